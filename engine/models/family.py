"""The questions every model family answers, so that no feature asks which family a model is.

A family (the feed-forward net, the CNN, whatever comes next) is one singleton object, a
subclass of `Family`, registered under the kind name its model files store
(engine.models.registry). Features take the family from the model (`model.family`) and ask it.
Families compare and hash by identity, so a jitted function that takes one as a static argument
compiles once per family and architecture.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from engine.models.plane import PlaneNet

Params = Mapping[str, Any]  # a model's flat {name: array}


class Family(ABC):
    """One model family. Arrays: images (n, 28, 28) floats in [0, 1]; logits (n, 10).

    kind: the name stored in model files and run links (never compared outside the registry).
    name: what the screen calls a model of the family ("feed-forward net", "CNN").
    spatial: whether its units see neighbourhoods of pixels (a convolution) or the whole image.
    unit_noun: what its first layer's units are called on screen ("hidden units", "filters").
    """

    kind: str
    name: str
    spatial: bool
    unit_noun: str

    def __repr__(self) -> str:
        return f"<family {self.kind}>"

    # --- building and storing ---------------------------------------------------------------

    @abstractmethod
    def init_params(self, key: jax.Array, architecture: Any) -> dict[str, jax.Array]:
        """Fresh parameters for `architecture`, drawn from `key` (as a training run starts)."""

    @abstractmethod
    def read_model_file(self, data: bytes) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
        """(architecture, params, metadata) from a model file's bytes; raises
        engine.models.checkpoint.CheckpointError when it is not a valid one of this family."""

    # A saved run's snapshot record -> the snapshot (ValueError for a malformed one); None for
    # a family whose saved runs keep no snapshots.
    read_snapshot: Callable[[Any], Any] | None = None

    # --- the network --------------------------------------------------------------------------

    @abstractmethod
    def logits(self, params: Params, images: jax.Array, architecture: Any) -> jax.Array:
        """Class scores (n, 10) as at inference (jittable; batch norm by stored statistics)."""

    @abstractmethod
    def predict_proba(self, params: Params, images: np.ndarray, architecture: Any
                      ) -> np.ndarray:
        """Class probabilities (n, 10), jitted per architecture, any n (bounded batches)."""

    @abstractmethod
    def layer_names(self, architecture: Any) -> list[str]:
        """Every layer `activations` reads, in order, the logits last: e.g.
        ["hidden layer 1 (256 units)", "logits (10)"]."""

    @abstractmethod
    def activations(self, params: Params, images: np.ndarray, architecture: Any, layer: int
                    ) -> np.ndarray:
        """The activations (n, units) of images at layer `layer` (an index of layer_names)."""

    @abstractmethod
    def unit_groups(self, architecture: Any) -> list[int]:
        """How many units each hidden group has (hidden layers' units, blocks' filters)."""

    @abstractmethod
    def unit_score(self, params: Params, image: jax.Array, index: jax.Array, architecture: Any,
                   group: int | None) -> jax.Array:
        """The score (scalar) of unit `index` of hidden group `group` (0-based), or of class
        `index` when group is None, for one image (28, 28): what feature visualisation climbs."""

    @abstractmethod
    def first_layer_images(self, params: Params) -> np.ndarray:
        """What the first layer's units look for, as images (units, side, side)."""

    @abstractmethod
    def plane_net(self, architecture: Any) -> PlaneNet:
        """The network as a loss landscape's plane function."""
