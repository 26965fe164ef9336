"""Model files of any family: a Model as .npz bytes, and bytes back as a Model (by the family
the file names, engine.models.registry)."""

from __future__ import annotations

from typing import Any

from engine.models import checkpoint
from engine.models.model import Model
from engine.models.registry import UnknownFamilyError, family_named


def model_file(model: Model, **info: Any) -> bytes:
    """The model as a model file (.npz bytes): its metadata, updated by `info` (metrics, the
    run's record...), beside its architecture and parameters."""
    metadata = {k: v for k, v in model.metadata.items() if k not in ("model", "architecture",
                                                                      "format")}
    return checkpoint.model_bytes(model.kind, model.architecture, model.params,
                                  **{**metadata, **info})


def model_from_bytes(data: bytes) -> Model:
    """A Model (params on the JAX device) from a model file's bytes, whichever family it holds.

    Raises checkpoint.CheckpointError when the file is not a valid model file.
    """
    kind = checkpoint.from_bytes(data).metadata.get("model")
    try:
        family = family_named(kind)
    except UnknownFamilyError:
        raise checkpoint.CheckpointError(f"This file holds a {kind!r} model, which cannot "
                                         "predict digits here.") from None
    architecture, params, metadata = family.read_model_file(data)
    return Model(family, architecture, params, metadata).on_device()
