"""The feed-forward net: one forward definition, differentiated by our autodiff or by jax.grad.

Parameters are a flat dict of float32 arrays, "w0", "b0", "w1", ... (layer i maps
layer_sizes[i] -> layer_sizes[i + 1]), so they checkpoint and chart without a tree walk. The
forward pass is written once against `engine.layers.Ops`; `BACKENDS` says how it is
differentiated:

- "autodiff": wrapped in our `Tensor`s, gradients from our reverse-mode engine, numpy steps;
- "jax": traced by `jax.grad`, steps jitted and run in `lax.scan` chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache, partial
from typing import Any

import jax
import numpy as np

from engine import checkpoint
from engine import train as training
from engine.data import as_float
from engine.layers import INITS, JAX_OPS, Array, Ops, activation, autodiff_ops, dense, init_dense
from engine.losses import loss_function
from engine.optim import OPTIMIZERS, make_optimizer
from engine.settings import Limits, run_length_problems

Params = dict[str, np.ndarray]
N_PIXELS, N_CLASSES = 28 * 28, 10
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


def init_params(arch: Architecture, seed: int = 0) -> Params:
    """Fresh float32 parameters: He or Xavier weights (seeded), zero biases."""
    rng = np.random.default_rng(seed)
    params: Params = {}
    sizes = arch.layer_sizes
    for i in range(arch.n_layers):
        params[f"w{i}"], params[f"b{i}"] = init_dense(rng, sizes[i], sizes[i + 1], arch.init)
    return params


def forward(ops: Ops, arch: Architecture, params: dict[str, Array], x: Array) -> Array:
    """Logits (batch, 10) for images x (batch, 28, 28) in [0, 1], on the backend `ops`."""
    nonlinearity = activation(ops, arch.activation)
    h = x.reshape(x.shape[0], N_PIXELS)
    for i in range(arch.n_layers):
        h = dense(h, params[f"w{i}"], params[f"b{i}"])
        if i < arch.n_layers - 1:  # the last layer's outputs are the logits
            h = nonlinearity(h)
    return h


def loss(ops: Ops, arch: Architecture, loss_name: str, params: dict[str, Array], x: Array,
         y: Array) -> Array:
    """The scalar training loss of a batch: x (batch, 28, 28) float, y (batch,) int."""
    return loss_function(loss_name)(ops, forward(ops, arch, params, ops.constant(x)), y)


# --- gradients on each backend -----------------------------------------------------------


def autodiff_loss_and_grads(arch: Architecture, loss_name: str
                            ) -> Callable[[Params, np.ndarray, np.ndarray], tuple[float, Params]]:
    """`(params, x, y) -> (loss, grads)` computed by our engine; grads have params' shapes."""
    from engine.autodiff import Tensor

    ops = autodiff_ops()

    def loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        tensors = {name: Tensor(value, requires_grad=True) for name, value in params.items()}
        value = loss(ops, arch, loss_name, tensors, x, y)
        value.backward()
        return value.item(), {name: tensor.grad for name, tensor in tensors.items()}

    return loss_and_grads


def jax_loss(arch: Architecture, loss_name: str) -> Callable[[Params, Array, Array], Array]:
    """The JAX-traceable `(params, x, y) -> loss`."""
    return partial(loss, JAX_OPS, arch, loss_name)


@partial(jax.jit, static_argnums=(0, 1))
def _jax_loss_and_grads(arch: Architecture, loss_name: str, params: Params, x: Array, y: Array):
    return jax.value_and_grad(jax_loss(arch, loss_name))(params, x, y)


def gradients(backend: str, arch: Architecture, loss_name: str, params: Params, x: np.ndarray,
              y: np.ndarray) -> tuple[float, Params]:
    """(loss, grads as numpy arrays) of one batch on `backend` ("autodiff" or "jax")."""
    if backend == "autodiff":
        return autodiff_loss_and_grads(arch, loss_name)(params, x, y)
    if backend == "jax":
        value, grads = _jax_loss_and_grads(arch, loss_name, params, x, np.asarray(y, np.int32))
        return float(value), {name: np.asarray(g) for name, g in grads.items()}
    raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")


@dataclass(frozen=True)
class LayerDifference:
    """How far apart the two backends' gradients of one layer (weights and bias) are."""

    layer: str
    max_abs: float
    max_rel: float


def gradient_differences(arch: Architecture, loss_name: str, params: Params, x: np.ndarray,
                         y: np.ndarray) -> list[LayerDifference]:
    """Per layer, max |g_autodiff - g_jax| and that divided by max |g_jax| (the twin check).

    x: (batch, 28, 28) float, y: (batch,) int.
    """
    _, ours = gradients("autodiff", arch, loss_name, params, x, y)
    _, theirs = gradients("jax", arch, loss_name, params, x, y)
    differences = []
    for i in range(arch.n_layers):
        names = (f"w{i}", f"b{i}")
        max_abs = max(float(np.abs(ours[n] - theirs[n]).max()) for n in names)
        scale = max(float(np.abs(theirs[n]).max()) for n in names)
        differences.append(LayerDifference(f"layer {i + 1}", max_abs,
                                           max_abs / scale if scale > 0 else 0.0))
    return differences


# --- prediction ------------------------------------------------------------------------------


@partial(jax.jit, static_argnums=0)
def _jax_logits(arch: Architecture, params: Params, images: Array) -> Array:
    return forward(JAX_OPS, arch, params, images)


def predict_proba(arch: Architecture, params: Params, images: np.ndarray) -> np.ndarray:
    """Class probabilities (n, 10) for float images (n, 28, 28) in [0, 1] (jitted JAX)."""
    return np.asarray(jax.nn.softmax(_jax_logits(arch, params, np.asarray(images, np.float32))))


def predict_labels(arch: Architecture, params: Params, images: np.ndarray) -> np.ndarray:
    """Most probable digit (n,) for float images (n, 28, 28)."""
    return np.asarray(_jax_logits(arch, params, np.asarray(images, np.float32))).argmax(axis=1)


def autodiff_predict_labels(arch: Architecture, params: Params, images: np.ndarray) -> np.ndarray:
    """Most probable digit (n,) computed by our engine's forward pass (no gradient tracked)."""
    ops = autodiff_ops()
    constants = {name: ops.constant(value) for name, value in params.items()}
    return forward(ops, arch, constants, ops.constant(images)).data.argmax(axis=1)


def first_layer_images(params: Params, limit: int = 64) -> np.ndarray:
    """The first `limit` hidden units' incoming weights as images (units, 28, 28)."""
    w0 = np.asarray(params["w0"])
    return w0[:, :limit].T.reshape(-1, 28, 28)


# --- model files -----------------------------------------------------------------------------

MODEL_KIND = "ffnn"


def checkpoint_bytes(arch: Architecture, params: Params, **info: Any) -> bytes:
    """A feed-forward model file (.npz bytes); see engine.checkpoint.model_bytes."""
    return checkpoint.model_bytes(MODEL_KIND, arch, params, **info)


def read_checkpoint(data: bytes) -> tuple[Architecture, Params, dict[str, Any]]:
    """(architecture, params, metadata) from a feed-forward model file's bytes; raises
    checkpoint.CheckpointError when it is not a valid one."""
    return checkpoint.read_model(data, MODEL_KIND, Architecture.from_metadata)


# --- training --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingConfig:
    """Everything the page's controls choose for one training run.

    The defaults are the page's (ui/state.py, checked by a test): they reach 93% test accuracy
    within seconds on either backend (benchmark T1).
    """

    arch: Architecture = field(default_factory=Architecture)
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    learning_rate: float = 2e-3
    batch_size: int = 64
    epochs: int = 10
    backend: str = "jax"
    seed: int = 0

    def to_metadata(self) -> dict[str, Any]:
        meta = asdict(self)
        meta["arch"] = self.arch.to_metadata()
        return meta


def limit_problems(config: TrainingConfig, limits: Limits) -> list[str]:
    """Why this run may not start on this server (empty if it may), one sentence each."""
    problems = []
    if len(config.arch.hidden) > limits.max_hidden_layers:
        problems.append(f"{len(config.arch.hidden)} hidden layers is over this server's limit "
                        f"of {limits.max_hidden_layers}.")
    if config.arch.hidden and max(config.arch.hidden) > limits.max_hidden_units:
        problems.append(f"{max(config.arch.hidden)} units in a layer is over this server's limit "
                        f"of {limits.max_hidden_units}.")
    return problems + run_length_problems(config.epochs, config.batch_size, limits)


def check_config(config: TrainingConfig) -> None:
    """Raise ValueError naming the first unknown choice or impossible number."""
    config.arch.check()
    loss_function(config.loss)
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}")
    if config.backend not in BACKENDS:
        raise ValueError(f"unknown backend {config.backend!r}")
    if not (config.learning_rate > 0 and np.isfinite(config.learning_rate)):
        raise ValueError(f"the learning rate must be a positive number, got {config.learning_rate}")
    if config.batch_size < 1 or config.epochs < 1:
        raise ValueError("batch size and epochs must be at least 1")


# Rough speeds of a training step on a small shared CPU, to size chunks (flop/s).
STEP_THROUGHPUT = {"jax": 10e9, "autodiff": 4e9}
CHUNK_SECONDS = 0.3


def chunk_steps(config: TrainingConfig) -> int:
    """Steps per chunk so that one chunk takes about CHUNK_SECONDS (Stop answers within a second).

    A step costs about 6 flops per weight per example (forward, and backward twice as much).
    """
    sizes = config.arch.layer_sizes
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    step_flops = 6 * weights * config.batch_size
    return int(np.clip(CHUNK_SECONDS * STEP_THROUGHPUT[config.backend] / step_flops, 1, 64))


@lru_cache(maxsize=8)
def compiled_jax_chunk(arch: Architecture, loss_name: str, optimizer: str, learning_rate: float
                       ) -> Callable[..., Any]:
    """The jitted chunk of steps (`engine.train.jax_chunk`) for this model and optimizer, kept:
    pressing Start again with the same settings compiles nothing (about a second saved)."""
    return training.jax_chunk(jax_loss(arch, loss_name), make_optimizer(optimizer, learning_rate))


def make_stepper(config: TrainingConfig, x_train: np.ndarray, y_train: np.ndarray
                 ) -> training.Stepper:
    """The stepper of config.backend for this model, loss and optimizer."""
    optimizer = make_optimizer(config.optimizer, config.learning_rate)
    if config.backend == "jax":
        chunk = compiled_jax_chunk(config.arch, config.loss, config.optimizer,
                                   config.learning_rate)
        return training.jax_stepper(jax_loss(config.arch, config.loss), optimizer, x_train,
                                    y_train, chunk=chunk)
    return training.numpy_stepper(autodiff_loss_and_grads(config.arch, config.loss), optimizer,
                                  x_train, y_train)


@dataclass(frozen=True)
class Snapshot:
    """What a training run shows of its model at an evaluation.

    weights: the first layer's weights as images (units, 28, 28), what each hidden unit looks
    for (with no hidden layer, each class's template). twin: the twin-engine check on a fixed
    batch at these parameters, if one was asked for.
    """

    weights: np.ndarray
    twin: list[LayerDifference] | None = None


def twin_batch(split: Any, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A fixed batch for the twin-engine check: x (size, 28, 28) float32, y (size,).

    Evenly spaced training digits, so every class is in it.
    """
    step = max(1, len(split.x_train) // size)
    return as_float(split.x_train[::step][:size]), split.y_train[::step][:size]


def training_run(config: TrainingConfig, split: Any, *, params: Params | None = None,
                 stop: Any = None, evals_per_epoch: int = 2,
                 twin_batch: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> Iterator[training.Progress]:
    """Train a net per `config` on `split` (see engine.train.train), from `params` if given.

    Each evaluation records a `Snapshot`; with twin_batch (x (batch, 28, 28) float, y (batch,))
    it includes the twin-engine gradient check on that batch.
    """
    check_config(config)
    if params is None:
        params = init_params(config.arch, config.seed)
    stepper = make_stepper(config, split.x_train, split.y_train)
    if config.backend == "autodiff":
        predict = partial(autodiff_predict_labels, config.arch)
    else:
        predict = partial(predict_labels, config.arch)
    schedule = training.Schedule(config.epochs, config.batch_size, config.seed,
                                 chunk_steps(config), evals_per_epoch)

    def snapshot(current: Params) -> Snapshot:
        current = {name: np.asarray(value) for name, value in current.items()}
        twin = (gradient_differences(config.arch, config.loss, current, *twin_batch)
                if twin_batch is not None else None)
        return Snapshot(first_layer_images(current), twin)

    return training.train(stepper, params, split, schedule, predict, stop=stop, snapshot=snapshot)
