"""A trained model as one value: kind, architecture, parameters and metadata, ready to predict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jax
import numpy as np

from engine import checkpoint

# What a run's model may have ended as and still be used (predict, download, the sketch lab).
USABLE_STATUSES = ("finished", "stopped", "abandoned")


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Model:
    """A model ready to predict.

    kind "ffnn": architecture is an `engine.ffnn.Architecture`, params its flat dict; kind "cnn":
    an `engine.cnn.CNNSpec` and its params. params: numpy arrays (a run's model) or arrays on the
    JAX device (`on_device()`, so that a prediction copies only the image). metadata: what a
    model file stores beside them (training settings, data set, metrics; a run's model also its
    "status" and "steps").
    """

    kind: Literal["ffnn", "cnn"]
    architecture: Any
    params: Any
    metadata: Mapping[str, Any]

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 10) for float images (n, 28, 28) in [0, 1].

        Jitted per architecture: the first call of a shape compiles, later ones reuse it. The
        CNN takes many images in bounded batches (engine.cnn.batched_proba).
        """
        from engine import cnn, ffnn  # the families build Models, so they import this module

        images = np.asarray(images, dtype=np.float32)
        if self.kind == "ffnn":
            return ffnn.predict_proba(self.params, images, arch=self.architecture)
        return cnn.batched_proba(self.params, images, spec=self.architecture)

    def describe(self) -> str:
        """The architecture in one line, e.g. "784-256-10, relu"."""
        return self.architecture.describe()

    def on_device(self) -> Model:
        """The same model with its parameters on the JAX device."""
        return Model(self.kind, self.architecture, jax.device_put(self.params), self.metadata)

    @property
    def usable(self) -> bool:
        """True unless this is a run's model that diverged, or its parameters are not finite.

        A model file without a "status" (a default model, an upload) counts as finished.
        """
        return self.metadata.get("status", "finished") in USABLE_STATUSES and all_finite(
            self.params)


def all_finite(tree: Any) -> bool:
    """True if every leaf of the pytree is free of NaN and inf."""
    leaves = jax.tree_util.tree_leaves(tree)
    return all(bool(np.isfinite(np.asarray(leaf)).all()) for leaf in leaves)



def model_file(model: Model, **info: Any) -> bytes:
    """The model as a model file (.npz bytes): its metadata, updated by `info` (metrics, the
    run's record...), beside its architecture and parameters."""
    metadata = {k: v for k, v in model.metadata.items() if k not in ("model", "architecture",
                                                                      "format")}
    return checkpoint.model_bytes(model.kind, model.architecture, model.params,
                                  **{**metadata, **info})


def model_from_bytes(data: bytes) -> Model:
    """A Model (params on the JAX device) from a model file's bytes, whichever kind it holds.

    Raises checkpoint.CheckpointError when the file is not a valid model file.
    """
    from engine import cnn, ffnn  # the families build Models, so they import this module

    kind = checkpoint.from_bytes(data).metadata.get("model")
    families = {ffnn.MODEL_KIND: ffnn, cnn.MODEL_KIND: cnn}
    if kind not in families:
        raise checkpoint.CheckpointError(f"This file holds a {kind!r} model, which cannot "
                                         "predict digits here.")
    architecture, params, metadata = families[kind].read_checkpoint(data)
    return Model(kind, architecture, params, metadata).on_device()
