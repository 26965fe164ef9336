"""A trained model as one value: family, architecture, parameters and metadata, ready to predict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from engine.models.family import Family
from engine.training.status import USABLE, RunStatus


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Model:
    """A model ready to predict.

    family: what kind of network it is (engine.models.family; ask it, never its name).
    architecture: the family's architecture (`engine.ffnn.Architecture`, `engine.cnn.CNNSpec`).
    params: its flat {name: array}, numpy arrays (a run's model) or arrays on the JAX device
    (`on_device()`, so that a prediction copies only the image). metadata: what a model file
    stores beside them (training settings, data set, metrics; a run's model also its "status"
    and "steps").
    """

    family: Family
    architecture: Any
    params: Any
    metadata: Mapping[str, Any]

    @property
    def kind(self) -> str:
        """The family's stored name ("ffnn", "cnn"): for files and links, not for decisions."""
        return self.family.kind

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 10) for float images (n, 28, 28) in [0, 1].

        Jitted per architecture: the first call of a shape compiles, later ones reuse it; many
        images go in bounded batches where the family needs them.
        """
        return self.family.predict_proba(self.params, np.asarray(images, dtype=np.float32),
                                         self.architecture)

    def describe(self) -> str:
        """The architecture in one line, e.g. "784-256-10, relu"."""
        return self.architecture.describe()

    def on_device(self) -> Model:
        """The same model with its parameters on the JAX device."""
        return Model(self.family, self.architecture, jax.device_put(self.params),
                     self.metadata)

    @property
    def usable(self) -> bool:
        """True unless this is a run's model that diverged, or its parameters are not finite.

        A model file without a "status" (a default model, an upload) counts as finished.
        """
        return self.metadata.get("status", RunStatus.FINISHED) in USABLE and all_finite(
            self.params)


def all_finite(tree: Any) -> bool:
    """True if every leaf of the pytree is free of NaN and inf."""
    leaves = jax.tree_util.tree_leaves(tree)
    return all(bool(np.isfinite(np.asarray(leaf)).all()) for leaf in leaves)


def widths_from_text(text: str, what: str, example: str) -> tuple[int, ...]:
    """"256, 128" -> (256, 128): the layer widths a room's text box holds ("" -> ()); ";"
    counts as ",". ValueError naming `what` ("hidden layers") and an `example` ("256,128") for
    anything else, a place left empty between commas included ("256,,128" may be a width
    forgotten, so it is not skipped)."""
    parts = [part.strip() for part in text.replace(";", ",").split(",")] if text.strip() else []
    if "" in parts:
        raise ValueError(f"{what} must be whole numbers separated by commas, with nothing left "
                         f"empty between them; got {text!r}")
    try:
        return tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(f"{what} must be whole numbers separated by commas, like {example}; "
                         f"got {text!r}") from None
