"""The rooms' controls: the choices as they are named on screen, and the one mapping from a
run's training settings to a room's widget values (a restored run sets them back the same way)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from engine import ffnn
from engine.cnn.model import PADDINGS
from engine.nn.layers import ACTIVATIONS, INITS
from ui.rooms.state import Room

# The rooms' choices, as their controls name them.
LOSS_NAMES = {"cross_entropy": "softmax cross-entropy", "mse": "squared error on one-hot"}


OPTIMIZER_NAMES = {"adam": "Adam", "momentum": "SGD + momentum (0.9)", "sgd": "plain SGD"}


POOL_NAMES = {"max": "max-pool 2×2", "avg": "average-pool 2×2", "none": "no pooling"}


KERNEL_SIZES = (3, 5, 7)


INIT_NAMES = {"he": "He", "xavier": "Glorot/Xavier", "lecun": "LeCun", "tiny": "tiny (He ×0.01)",
              "large": "large (He ×10)", "zeros": "zeros"}


def _pick(meta: Mapping[str, Any], name: str, kind: type | tuple[type, ...],
          choices: Any = None) -> Any:
    """meta[name] if it is of `kind` (and among `choices`, if given), else None."""
    value = meta.get(name) if isinstance(meta, Mapping) else None
    if isinstance(value, bool) and kind is not bool:
        return None
    if not isinstance(value, kind) or (choices is not None and value not in choices):
        return None
    return value


def _controls(prefix: str, fields: dict[str, Any]) -> dict[str, Any]:
    """{prefix + name: value} for the fields that could be read."""
    return {f"{prefix}{name}": value for name, value in fields.items() if value is not None}


def feedforward_controls(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The feed-forward room's controls for a run's training settings (ffnn.TrainingConfig's
    metadata)."""
    arch = _pick(meta, "arch", Mapping) or {}
    hidden = _pick(arch, "hidden", list)
    return _controls("ff_", {
        "backend": _pick(meta, "backend", str, ffnn.BACKENDS),
        "hidden": None if hidden is None else ", ".join(str(int(h)) for h in hidden
                                                         if isinstance(h, int)),
        "activation": _pick(arch, "activation", str, ACTIVATIONS),
        "init": _pick(arch, "init", str, INITS),
        "batch_norm": _pick(arch, "batch_norm", bool),
        "loss": _pick(meta, "loss", str, LOSS_NAMES),
        "optimizer": _pick(meta, "optimizer", str, OPTIMIZER_NAMES),
        "learning_rate": _pick(meta, "learning_rate", (int, float)),
        "batch_size": _pick(meta, "batch_size", int),
        "epochs": _pick(meta, "epochs", int),
        "shift": _pick(meta, "max_shift", int),
        "train_digits": _pick(meta, "train_digits", int)})


def cnn_controls(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The CNN room's controls for a run's training settings (cnn.TrainingConfig's metadata)."""
    spec = _pick(meta, "spec", Mapping) or {}
    filters = _pick(spec, "filters", list)
    dropout = _pick(spec, "dropout", (int, float))
    return _controls("cnn_", {
        "filters": None if filters is None else ", ".join(str(int(f)) for f in filters
                                                           if isinstance(f, int)),
        "kernel": _pick(spec, "kernel_size", int, KERNEL_SIZES),
        "pool": _pick(spec, "pool", str, POOL_NAMES),
        "padding": _pick(spec, "padding", str, PADDINGS),
        "use_dropout": None if dropout is None else dropout > 0,
        "dropout": dropout if dropout else None,
        "optimizer": _pick(meta, "optimizer", str, OPTIMIZER_NAMES),
        "learning_rate": _pick(meta, "learning_rate", (int, float)),
        "batch_size": _pick(meta, "batch_size", int),
        "epochs": _pick(meta, "epochs", int),
        "shift": _pick(meta, "max_shift", int),
        "decay": _pick(meta, "cosine_decay", bool)})


def shift_slider(room: Room) -> None:
    """The room's augmentation control (key prefix + "shift"): 0 to 4 pixels."""
    st.slider("Augmentation: random shifts (pixels)", 0, 4, key=f"{room.prefix}shift",
              help="Each training digit moves by up to this many pixels, a new shift every "
                   "time: the net learns that a digit is the same a little off-centre, as "
                   "drawn digits often are.")
