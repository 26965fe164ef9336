"""The feed-forward net's model: one forward definition, differentiated by our autodiff or jax.grad.

Parameters are a flat dict of float32 arrays, "w0", "b0", "w1", ... (layer i maps
layer_sizes[i] -> layer_sizes[i + 1]), so they checkpoint and chart without a tree walk. The
forward pass is written once against `engine.layers.Ops`; `BACKENDS` says how it is
differentiated:

- "autodiff": wrapped in our `Tensor`s, gradients from our reverse-mode engine, numpy steps;
- "jax": traced by `jax.grad`, steps jitted and run in `lax.scan` chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import numpy as np

from engine import checkpoint
from engine.data import N_CLASSES, as_float
from engine.layers import (
    INITS,
    JAX_OPS,
    Array,
    Ops,
    activation,
    autodiff_ops,
    dense,
    init_dense,
    numpy_rng,
)
from engine.losses import loss_function

Params = dict[str, np.ndarray]
N_PIXELS = 28 * 28
MODEL_KIND = "ffnn"
BACKENDS = {"autodiff": "our autodiff engine", "jax": "jax.grad"}


@dataclass(frozen=True)
class Architecture:
    """Layer widths between the 784 pixels and the 10 classes, nonlinearity, initialisation."""

    hidden: tuple[int, ...] = (256,)
    activation: str = "relu"
    init: str = "he"

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (N_PIXELS, *self.hidden, N_CLASSES)

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """{"w0": (784, h0), "b0": (h0,), ..., "wL": (h_last, 10), "bL": (10,)}."""
        sizes = self.layer_sizes
        shapes: dict[str, tuple[int, ...]] = {}
        for i in range(self.n_layers):
            shapes[f"w{i}"] = (sizes[i], sizes[i + 1])
            shapes[f"b{i}"] = (sizes[i + 1],)
        return shapes

    def describe(self) -> str:
        """E.g. "784-256-10, relu"."""
        return "-".join(map(str, self.layer_sizes)) + f", {self.activation}"

    def to_metadata(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "activation": self.activation, "init": self.init}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> Architecture:
        """Inverse of `to_metadata`; raises ValueError for anything malformed."""
        try:
            hidden = tuple(int(h) for h in meta["hidden"])
            arch = cls(hidden, str(meta["activation"]), str(meta.get("init", "he")))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a feed-forward architecture: {meta!r}") from error
        arch.check()
        return arch

    def check(self) -> None:
        """Raise ValueError if a width is not positive or a name is unknown."""
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"every hidden layer needs at least one unit, got {self.hidden}")
        activation(JAX_OPS, self.activation)
        if self.init not in INITS:
            raise ValueError(f"unknown initialisation {self.init!r}")


def parse_hidden(text: str) -> tuple[int, ...]:
    """"256,128" -> (256, 128); "" -> () (no hidden layer: a linear classifier)."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"hidden layers must be whole numbers separated by commas, "
                         f"like 256 or 256,128; got {text!r}") from None
    if any(w < 1 for w in widths):
        raise ValueError(f"every hidden layer needs at least one unit, got {text!r}")
    return widths


def format_hidden(hidden: tuple[int, ...]) -> str:
    """(256, 128) -> "256, 128": the text `parse_hidden` reads back (a control's default)."""
    return ", ".join(map(str, hidden))


def init_params(key: jax.Array, arch: Architecture) -> Params:
    """Fresh float32 parameters drawn from `key`: weights as arch.init says, zero biases."""
    rng = numpy_rng(key)
    params: Params = {}
    sizes = arch.layer_sizes
    for i in range(arch.n_layers):
        params[f"w{i}"], params[f"b{i}"] = init_dense(rng, sizes[i], sizes[i + 1], arch.init)
    return params


def layer_outputs(params: dict[str, Array], x: Array, *, arch: Architecture, ops: Ops = JAX_OPS
                  ) -> list[Array]:
    """Every layer's output for images x (batch, 28, 28) in [0, 1], on the backend `ops`: the
    hidden layers' activations (batch, h_i), then the logits (batch, 10) last."""
    nonlinearity = activation(ops, arch.activation)
    h = x.reshape(x.shape[0], N_PIXELS)
    outputs = []
    for i in range(arch.n_layers):
        h = dense(h, params[f"w{i}"], params[f"b{i}"])
        if i < arch.n_layers - 1:  # the last layer's outputs are the logits
            h = nonlinearity(h)
        outputs.append(h)
    return outputs


def forward(params: dict[str, Array], x: Array, *, arch: Architecture, ops: Ops = JAX_OPS
            ) -> Array:
    """Logits (batch, 10) for images x (batch, 28, 28) in [0, 1], on the backend `ops`."""
    return layer_outputs(params, x, arch=arch, ops=ops)[-1]


def loss(params: dict[str, Array], x: Array, y: Array, *, arch: Architecture, loss_name: str,
         ops: Ops = JAX_OPS) -> Array:
    """The scalar training loss of a batch: x (batch, 28, 28) float, y (batch,) int."""
    return loss_function(loss_name)(ops, forward(params, ops.constant(x), arch=arch, ops=ops), y)


def train_logits(params: Params, x: jax.Array, key: jax.Array | None, *, arch: Architecture
                 ) -> jax.Array:
    """Logits (B, 10) of a batch x (B, 28, 28) for `engine.train.StepRule` (no randomness)."""
    return forward(params, x, arch=arch)


def uniform_guess_loss(loss_name: str) -> float:
    """The loss of a model that gives every class the same score (an untrained one's)."""
    ops = autodiff_ops()
    logits = ops.constant(np.zeros((1, N_CLASSES), np.float32))
    return float(loss_function(loss_name)(ops, logits, np.zeros(1, np.int64)).item())


# --- gradients on each backend -----------------------------------------------------------


def autodiff_loss_and_grads(arch: Architecture, loss_name: str
                            ) -> Callable[[Params, np.ndarray, np.ndarray], tuple[float, Params]]:
    """`(params, x, y) -> (loss, grads)` computed by our engine; grads have params' shapes."""

    def loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        value, _, grads = autodiff_layer_pass(params, x, y, arch=arch, loss_name=loss_name)
        return value, grads

    return loss_and_grads


def autodiff_layer_pass(params: Params, x: np.ndarray, y: np.ndarray, *, arch: Architecture,
                        loss_name: str) -> tuple[float, list[np.ndarray], Params]:
    """(loss, every layer's output, grads) of one batch, read off our engine's tape.

    x: (batch, 28, 28) float, y: (batch,) int. Outputs as `layer_outputs` (hidden activations
    (batch, h_i), logits last); grads have params' shapes.
    """
    from engine.autodiff import Tensor

    ops = autodiff_ops()
    tensors = {name: Tensor(value, requires_grad=True) for name, value in params.items()}
    outputs = layer_outputs(tensors, ops.constant(x), arch=arch, ops=ops)
    value = loss_function(loss_name)(ops, outputs[-1], y)
    value.backward()
    return (value.item(), [output.data for output in outputs],
            {name: tensor.grad for name, tensor in tensors.items()})


@partial(jax.jit, static_argnames=("arch", "loss_name"))
def _jax_layer_pass(params: Params, x: Array, y: Array, *, arch: Architecture, loss_name: str):
    def loss_and_outputs(params):
        outputs = layer_outputs(params, x, arch=arch)
        return loss_function(loss_name)(JAX_OPS, outputs[-1], y), outputs

    (value, outputs), grads = jax.value_and_grad(loss_and_outputs, has_aux=True)(params)
    return value, outputs, grads


def layer_pass(params: Params, x: np.ndarray, y: np.ndarray, *, arch: Architecture,
               loss_name: str, backend: str) -> tuple[float, list[np.ndarray], Params]:
    """(loss, every layer's output, grads), all numpy, of one batch on `backend`: one forward
    and backward pass, the raw material of engine.health. Shapes as `autodiff_layer_pass`."""
    if backend == "autodiff":
        return autodiff_layer_pass(params, x, y, arch=arch, loss_name=loss_name)
    if backend == "jax":
        value, outputs, grads = _jax_layer_pass(params, x, np.asarray(y, np.int32), arch=arch,
                                                loss_name=loss_name)
        return (float(value), [np.asarray(output) for output in outputs],
                {name: np.asarray(g) for name, g in grads.items()})
    raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")


def gradients(params: Params, x: np.ndarray, y: np.ndarray, *, arch: Architecture,
              loss_name: str, backend: str) -> tuple[float, Params]:
    """(loss, grads as numpy arrays) of one batch x (batch, 28, 28) float, y (batch,) int on
    `backend` ("autodiff" or "jax")."""
    value, _, grads = layer_pass(params, x, y, arch=arch, loss_name=loss_name, backend=backend)
    return value, grads


@dataclass(frozen=True)
class LayerDifference:
    """How far apart the two backends' gradients of one layer (weights and bias) are."""

    layer: str
    max_abs: float
    max_rel: float


def layer_differences(ours: Params, theirs: Params, arch: Architecture
                      ) -> list[LayerDifference]:
    """Per layer, max |ours - theirs| over its weights and bias, and that divided by
    max |theirs|: two sets of gradients of the same parameters compared (the twin check)."""
    differences = []
    for i in range(arch.n_layers):
        names = (f"w{i}", f"b{i}")
        max_abs = max(float(np.abs(ours[n] - theirs[n]).max()) for n in names)
        scale = max(float(np.abs(theirs[n]).max()) for n in names)
        differences.append(LayerDifference(f"layer {i + 1}", max_abs,
                                           max_abs / scale if scale > 0 else 0.0))
    return differences


def gradient_differences(params: Params, x: np.ndarray, y: np.ndarray, *, arch: Architecture,
                         loss_name: str) -> list[LayerDifference]:
    """Per layer, how far our engine's gradients are from jax.grad's (`layer_differences`).

    x: (batch, 28, 28) float, y: (batch,) int.
    """
    _, ours = gradients(params, x, y, arch=arch, loss_name=loss_name, backend="autodiff")
    _, theirs = gradients(params, x, y, arch=arch, loss_name=loss_name, backend="jax")
    return layer_differences(ours, theirs, arch)


# --- prediction ------------------------------------------------------------------------------


@partial(jax.jit, static_argnames="arch")
def logits(params: Params, images: Array, *, arch: Architecture) -> Array:
    """Class scores (n, 10) for images (n, 28, 28), uint8 pixels or floats in [0, 1] (jitted)."""
    return forward(params, as_float(images), arch=arch)


def predict_proba(params: Params, images: np.ndarray, *, arch: Architecture) -> np.ndarray:
    """Class probabilities (n, 10) for images (n, 28, 28) (jitted JAX)."""
    return np.asarray(jax.nn.softmax(logits(params, images, arch=arch)))


def predict_labels(params: Params, images: np.ndarray, *, arch: Architecture) -> np.ndarray:
    """Most probable digit (n,) for images (n, 28, 28)."""
    return np.asarray(logits(params, images, arch=arch)).argmax(axis=1)


def autodiff_predict_labels(params: Params, images: np.ndarray, *, arch: Architecture
                            ) -> np.ndarray:
    """Most probable digit (n,) computed by our engine's forward pass (no gradient tracked)."""
    ops = autodiff_ops()
    constants = {name: ops.constant(value) for name, value in params.items()}
    return forward(constants, ops.constant(as_float(images)), arch=arch, ops=ops).data.argmax(
        axis=1)


def first_layer_images(params: Params, limit: int = 64) -> np.ndarray:
    """The first `limit` hidden units' incoming weights as images (units, 28, 28)."""
    w0 = np.asarray(params["w0"])
    return w0[:, :limit].T.reshape(-1, 28, 28)


# --- model files -----------------------------------------------------------------------------


def checkpoint_bytes(arch: Architecture, params: Params, **info: Any) -> bytes:
    """A feed-forward model file (.npz bytes); see engine.checkpoint.model_bytes."""
    return checkpoint.model_bytes(MODEL_KIND, arch, params, **info)


def read_checkpoint(data: bytes) -> tuple[Architecture, Params, dict[str, Any]]:
    """(architecture, params, metadata) from a feed-forward model file's bytes; raises
    checkpoint.CheckpointError when it is not a valid one."""
    return checkpoint.read_model(data, MODEL_KIND, Architecture.from_metadata)
