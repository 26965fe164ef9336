"""The feed-forward net's model: one forward definition, differentiated by our autodiff or jax.grad.

Parameters are a flat dict of float32 arrays, "w0", "b0", "w1", ... (layer i maps
layer_sizes[i] -> layer_sizes[i + 1]), so they checkpoint and chart without a tree walk; a net
with batch norm also has, per hidden layer i, "gamma{i}" and "beta{i}" (trained) and "mean{i}"
and "var{i}" (its population statistics, never trained: see `population_statistics`). The
forward pass is written once against `engine.nn.layers.Ops`; `BACKENDS` says how it is
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

from engine.data.mnist import N_CLASSES, as_float
from engine.models import checkpoint
from engine.models.model import widths_from_text
from engine.nn.layers import (
    INITS,
    JAX_OPS,
    Array,
    Ops,
    activation,
    autodiff_ops,
    batch_statistics,
    dense,
    init_dense,
    normalised,
    numpy_rng,
)
from engine.nn.losses import loss_function

Params = dict[str, np.ndarray]
N_PIXELS = 28 * 28
MODEL_KIND = "ffnn"
BACKENDS = {"autodiff": "our autodiff engine", "jax": "jax.grad"}


STATISTICS = ("mean", "var")  # a batch-normalised layer's stored statistics, never trained
NORM_STARTS = {"gamma": 1.0, "beta": 0.0, "mean": 0.0, "var": 1.0}  # before any training


@dataclass(frozen=True)
class Architecture:
    """Layer widths between the 784 pixels and the 10 classes, nonlinearity, initialisation.

    batch_norm: each hidden layer's product z = h @ w + b is batch-normalised (Ioffe and
    Szegedy 2015) before its activation: gamma * (z - mean) / sqrt(var + eps) + beta, per unit.
    The bias b is kept though it is redundant there (the mean takes it away again, its gradient
    is zero): so every layer stays the same dense layer for every view that reads "w{i}", "b{i}".
    """

    hidden: tuple[int, ...] = (256,)
    activation: str = "relu"
    init: str = "he"
    batch_norm: bool = False

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (N_PIXELS, *self.hidden, N_CLASSES)

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def norm_names(self, i: int) -> tuple[str, ...]:
        """Layer i's trained batch-norm parameters ("gamma{i}", "beta{i}"); () without batch
        norm or for the output layer."""
        return (f"gamma{i}", f"beta{i}") if self.batch_norm and i < len(self.hidden) else ()

    def statistic_names(self, i: int) -> tuple[str, ...]:
        """Layer i's stored batch-norm statistics ("mean{i}", "var{i}"), () as `norm_names`."""
        return tuple(f"{name}{i}" for name in STATISTICS) if self.norm_names(i) else ()

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """{"w0": (784, h0), "b0": (h0,), ..., "wL": (h_last, 10), "bL": (10,)}, with batch
        norm also "gamma{i}", "beta{i}", "mean{i}", "var{i}": (h_i,) per hidden layer i."""
        sizes = self.layer_sizes
        shapes: dict[str, tuple[int, ...]] = {}
        for i in range(self.n_layers):
            shapes[f"w{i}"] = (sizes[i], sizes[i + 1])
            shapes[f"b{i}"] = (sizes[i + 1],)
            shapes.update({name: (sizes[i + 1],)
                           for name in self.norm_names(i) + self.statistic_names(i)})
        return shapes

    def describe(self) -> str:
        """E.g. "784-256-10, relu", "784-64-64-10, sigmoid, batch norm"."""
        return ("-".join(map(str, self.layer_sizes)) + f", {self.activation}"
                + (", batch norm" if self.batch_norm else ""))

    def to_metadata(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "activation": self.activation, "init": self.init,
                "batch_norm": self.batch_norm}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> Architecture:
        """Inverse of `to_metadata` (a file from before batch norm has none); raises ValueError
        for anything malformed."""
        try:
            hidden = tuple(int(h) for h in meta["hidden"])
            arch = cls(hidden, str(meta["activation"]), str(meta.get("init", "he")),
                       meta.get("batch_norm", False))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a feed-forward architecture: {meta!r}") from error
        arch.check()
        return arch

    def check(self) -> None:
        """Raise ValueError if a width is not positive or a name or batch_norm is unknown."""
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"every hidden layer needs at least one unit, got {self.hidden}")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm must be true or false, got {self.batch_norm!r}")
        activation(JAX_OPS, self.activation)
        if self.init not in INITS:
            raise ValueError(f"unknown initialisation {self.init!r}")


def parse_hidden(text: str) -> tuple[int, ...]:
    """"256,128" -> (256, 128); "" -> () (no hidden layer: a linear classifier). ValueError for
    anything else (see `widths_from_text`) or a layer of no unit."""
    widths = widths_from_text(text, "hidden layers", "256 or 256,128")
    if any(w < 1 for w in widths):
        raise ValueError(f"every hidden layer needs at least one unit, got {text!r}")
    return widths


def format_hidden(hidden: tuple[int, ...]) -> str:
    """(256, 128) -> "256, 128": the text `parse_hidden` reads back (a control's default)."""
    return ", ".join(map(str, hidden))


def init_params(key: jax.Array, arch: Architecture) -> Params:
    """Fresh float32 parameters drawn from `key`: weights as arch.init says, zero biases; with
    batch norm gamma 1, beta 0, and the statistics of a unit normal (mean 0, var 1)."""
    rng = numpy_rng(key)
    params: Params = {}
    sizes = arch.layer_sizes
    for i in range(arch.n_layers):
        params[f"w{i}"], params[f"b{i}"] = init_dense(rng, sizes[i], sizes[i + 1], arch.init)
        params.update({name: np.full(sizes[i + 1], NORM_STARTS[stem(name)], np.float32)
                       for name in arch.norm_names(i) + arch.statistic_names(i)})
    return params


def stem(name: str) -> str:
    """A parameter's name without its layer number: "gamma2" -> "gamma"."""
    return name.rstrip("0123456789")


def trainable(params: dict[str, Array]) -> dict[str, Array]:
    """params without the batch norms' stored statistics: what an optimizer moves."""
    return {name: value for name, value in params.items() if stem(name) not in STATISTICS}


# normalise(params, i, z (batch, h_i), ops) -> (batch, h_i): hidden layer i's batch norm
Normaliser = Callable[[dict[str, Array], int, Array, Ops], Array]


def by_batch(params: dict[str, Array], i: int, z: Array, ops: Ops) -> Array:
    """Training mode: z normalised by the batch's own statistics."""
    return ops.batch_norm(z, params[f"gamma{i}"], params[f"beta{i}"])


def by_population(params: dict[str, Array], i: int, z: Array, ops: Ops) -> Array:
    """Evaluation mode: z normalised by the stored statistics (no gradient flows into them),
    so an image's output does not depend on the others in its batch."""
    return normalised(z, ops.frozen(params[f"mean{i}"]), ops.frozen(params[f"var{i}"]),
                      params[f"gamma{i}"], params[f"beta{i}"])


def outputs_normalised_by(params: dict[str, Array], x: Array, *, arch: Architecture, ops: Ops,
                          normalise: Normaliser | None) -> list[Array]:
    """`layer_outputs` with each hidden layer's product passed through `normalise` before its
    activation (None: no batch norm)."""
    nonlinearity = activation(ops, arch.activation)
    h = x.reshape(x.shape[0], N_PIXELS)
    outputs = []
    for i in range(arch.n_layers):
        h = dense(h, params[f"w{i}"], params[f"b{i}"])
        if i < arch.n_layers - 1:  # the last layer's outputs are the logits
            if normalise is not None:
                h = normalise(params, i, h, ops)
            h = nonlinearity(h)
        outputs.append(h)
    return outputs


def layer_outputs(params: dict[str, Array], x: Array, *, arch: Architecture, ops: Ops = JAX_OPS,
                  batch_stats: bool = False) -> list[Array]:
    """Every layer's output for images x (batch, 28, 28) in [0, 1], on the backend `ops`: the
    hidden layers' activations (batch, h_i), then the logits (batch, 10) last.

    With batch norm, batch_stats=True normalises by the batch's own statistics (training: the
    loss, its gradients, the twin check, layer health); False by the stored ones (evaluation,
    a single image too). Without batch norm it changes nothing.
    """
    normalise = (by_batch if batch_stats else by_population) if arch.batch_norm else None
    return outputs_normalised_by(params, x, arch=arch, ops=ops, normalise=normalise)


def forward(params: dict[str, Array], x: Array, *, arch: Architecture, ops: Ops = JAX_OPS,
            batch_stats: bool = False) -> Array:
    """Logits (batch, 10) for images x (batch, 28, 28) in [0, 1], on the backend `ops`
    (batch_stats: as `layer_outputs`)."""
    return layer_outputs(params, x, arch=arch, ops=ops, batch_stats=batch_stats)[-1]


def loss(params: dict[str, Array], x: Array, y: Array, *, arch: Architecture, loss_name: str,
         ops: Ops = JAX_OPS) -> Array:
    """The scalar training loss of a batch (batch norm by its own statistics): x (batch, 28, 28)
    float, y (batch,) int."""
    logits = forward(params, ops.constant(x), arch=arch, ops=ops, batch_stats=True)
    return loss_function(loss_name)(ops, logits, y)


def train_logits(params: Params, x: jax.Array, key: jax.Array | None, *, arch: Architecture
                 ) -> jax.Array:
    """Logits (B, 10) of a batch x (B, 28, 28) for `engine.training.loop.StepRule` (no randomness;
    batch norm by the batch's own statistics)."""
    return forward(params, x, arch=arch, batch_stats=True)


def population_statistics(params: Params, x: np.ndarray, *, arch: Architecture,
                          ops: Ops = JAX_OPS) -> Params:
    """{"mean{i}": (h_i,), "var{i}": (h_i,)} numpy: each batch-normalised layer's statistics on
    the images x (n, 28, 28) float, the batch-statistics forward pass at params.

    This is "precise BN" (Wu and Johnson 2021) rather than running averages: the training step
    stays a pure function of the trained parameters, and the statistics are recomputed from a
    fixed set of training digits whenever a run hands its parameters out (after each chunk of
    steps, so at every evaluation and at the end; see `engine.ffnn.training`). On x itself,
    evaluation mode then gives exactly what training mode gives.
    """
    stats: dict[str, Array] = {}

    def record(params: dict[str, Array], i: int, z: Array, ops: Ops) -> Array:
        mean, var = batch_statistics(z)
        stats[f"mean{i}"], stats[f"var{i}"] = mean, var
        return normalised(z, mean, var, params[f"gamma{i}"], params[f"beta{i}"])

    constants = {name: ops.constant(value) for name, value in trainable(params).items()}
    outputs_normalised_by(constants, ops.constant(x), arch=arch, ops=ops, normalise=record)
    as_numpy = (lambda t: t.data) if ops.name == "autodiff" else np.asarray
    return {name: as_numpy(value) for name, value in stats.items()}


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

    x: (batch, 28, 28) float, y: (batch,) int. Outputs as `layer_outputs` with the batch's own
    statistics (hidden activations (batch, h_i), logits last); grads have params' shapes (zero
    for the stored statistics, which training mode does not read).
    """
    from engine.autodiff import Tensor

    ops = autodiff_ops()
    tensors = {name: Tensor(value, requires_grad=True) for name, value in params.items()}
    outputs = layer_outputs(tensors, ops.constant(x), arch=arch, ops=ops, batch_stats=True)
    value = loss_function(loss_name)(ops, outputs[-1], y)
    value.backward()
    return (value.item(), [output.data for output in outputs],
            {name: tensor.grad for name, tensor in tensors.items()})


@partial(jax.jit, static_argnames=("arch", "loss_name"))
def _jax_layer_pass(params: Params, x: Array, y: Array, *, arch: Architecture, loss_name: str):
    def loss_and_outputs(params):
        outputs = layer_outputs(params, x, arch=arch, batch_stats=True)
        return loss_function(loss_name)(JAX_OPS, outputs[-1], y), outputs

    (value, outputs), grads = jax.value_and_grad(loss_and_outputs, has_aux=True)(params)
    return value, outputs, grads


def layer_pass(params: Params, x: np.ndarray, y: np.ndarray, *, arch: Architecture,
               loss_name: str, backend: str) -> tuple[float, list[np.ndarray], Params]:
    """(loss, every layer's output, grads), all numpy, of one batch on `backend`: one forward
    and backward pass, the raw material of engine.explain.health. Shapes as
    `autodiff_layer_pass`."""
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


# How far apart two computations of the same gradients may be, relative to the largest one
# (max_rel): float32 keeps about 7 significant digits, and two engines add the same hundreds of
# products in different orders, so they differ by ~1e-6 of the largest gradient. A wrong
# gradient is off by far more (a dropped term, a wrong sign: order 1). The twin check and the
# break-it lab both judge by it.
TWIN_TOLERANCE = 1e-4


@dataclass(frozen=True)
class LayerDifference:
    """How far apart the two backends' gradients of one layer (weights and bias, and gamma
    and beta with batch norm) are."""

    layer: str
    max_abs: float
    max_rel: float


def layer_differences(ours: Params, theirs: Params, arch: Architecture
                      ) -> list[LayerDifference]:
    """Per layer, max |ours - theirs| over its weights and bias (and batch norm's gamma and
    beta), and that divided by max |theirs|: two sets of gradients of the same parameters
    compared (the twin check)."""
    differences = []
    for i in range(arch.n_layers):
        names = (f"w{i}", f"b{i}", *arch.norm_names(i))
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
    """Most probable digit (n,) computed by our engine's forward pass (no gradient tracked;
    batch norm by the stored statistics)."""
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
    """A feed-forward model file (.npz bytes); see engine.models.checkpoint.model_bytes."""
    return checkpoint.model_bytes(MODEL_KIND, arch, params, **info)


def read_checkpoint(data: bytes) -> tuple[Architecture, Params, dict[str, Any]]:
    """(architecture, params, metadata) from a feed-forward model file's bytes; raises
    checkpoint.CheckpointError when it is not a valid one."""
    return checkpoint.read_model(data, MODEL_KIND, Architecture.from_metadata)
