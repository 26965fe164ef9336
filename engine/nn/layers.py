"""Layers written once against a small backend namespace (`Ops`), runnable on JAX or our Tensor.

A model's forward pass calls only `ops.*` functions and array operators (`@`, `+`, `*`,
`.reshape`, `.sum`, `.mean`), so the very same code is differentiated by `jax.grad` when it runs
on `JAX_OPS`, and by our own reverse-mode engine when it runs on `autodiff_ops()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = Any  # np.ndarray, jax.Array or engine.autodiff.Tensor


@dataclass(frozen=True)
class Ops:
    """The functions a forward pass may call, for one backend.

    `constant` wraps an input that needs no gradient (a data batch); `one_hot(labels, n)` returns
    a plain float32 array (n_labels, n) that multiplies either backend's arrays. `frozen(x)` is
    x with no gradient flowing into it (stored statistics). `batch_norm(z, gamma, beta)` is
    `batch_norm` in training mode: our engine has an op of its own with a hand-written backward,
    JAX differentiates the composition.
    """

    name: str
    constant: Callable[[Array], Array]
    exp: Callable[[Array], Array]
    relu: Callable[[Array], Array]
    tanh: Callable[[Array], Array]
    sigmoid: Callable[[Array], Array]
    log_softmax: Callable[[Array], Array]
    one_hot: Callable[[Array, int], Array]
    frozen: Callable[[Array], Array]
    batch_norm: Callable[[Array, Array, Array], Array]


BN_EPSILON = 1e-5  # added to a batch norm's variance, so a unit that never varies divides by >0


def batch_statistics(z: Array) -> tuple[Array, Array]:
    """(mean, variance) (units,) of z (batch, units) over the batch, on either backend; the
    variance is the biased one (divided by the batch size), as batch norm uses it."""
    mean = z.mean(axis=0)
    centred = z - mean
    return mean, (centred * centred).mean(axis=0)


def normalised(z: Array, mean: Array, var: Array, gamma: Array, beta: Array) -> Array:
    """Batch norm's output for z (batch, units) given its statistics mean, var (units,):
    gamma * (z - mean) / sqrt(var + BN_EPSILON) + beta, with gamma, beta (units,)."""
    return (z - mean) * ((var + BN_EPSILON) ** -0.5 * gamma) + beta


def composed_batch_norm(z: Array, gamma: Array, beta: Array) -> Array:
    """Batch norm in training mode, z (batch, units) -> (batch, units), by the batch's own
    statistics, written with array operators only: what `jax.grad` differentiates."""
    return normalised(z, *batch_statistics(z), gamma, beta)


JAX_OPS = Ops(
    name="jax",
    constant=jnp.asarray,
    exp=jnp.exp,
    relu=jax.nn.relu,
    tanh=jnp.tanh,
    sigmoid=jax.nn.sigmoid,
    log_softmax=jax.nn.log_softmax,
    one_hot=lambda labels, n: jax.nn.one_hot(labels, n, dtype=jnp.float32),
    frozen=lax.stop_gradient,
    batch_norm=composed_batch_norm,
)


def numpy_one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    """Rows of the identity: labels (batch,) int -> (batch, n) float32."""
    return np.eye(n, dtype=np.float32)[np.asarray(labels)]


def autodiff_ops() -> Ops:
    """The namespace of our own engine (imported lazily: the engine is a separate package)."""
    from engine import autodiff

    return Ops(
        name="autodiff",
        constant=lambda x: autodiff.Tensor(np.asarray(x), requires_grad=False),
        exp=autodiff.exp,
        relu=autodiff.relu,
        tanh=autodiff.tanh,
        sigmoid=autodiff.sigmoid,
        log_softmax=autodiff.log_softmax,
        one_hot=numpy_one_hot,
        frozen=lambda x: autodiff.Tensor(x.data if isinstance(x, autodiff.Tensor) else x),
        batch_norm=partial(autodiff.batch_norm, epsilon=BN_EPSILON),
    )


def dense(x: Array, w: Array, b: Array) -> Array:
    """Fully connected layer: x (batch, n_in) @ w (n_in, n_out) + b (n_out,) -> (batch, n_out)."""
    return x @ w + b


LEAKY_SLOPE = 0.01  # leaky ReLU's slope below zero
GELU_CUBIC = 0.044715  # GELU's tanh approximation (Hendrycks and Gimpel), as jax.nn.gelu's


def leaky_relu(ops: Ops, x: Array) -> Array:
    """max(x, 0.01 x), built from relu: x above zero, a small slope below, so no unit dies."""
    return ops.relu(x) - LEAKY_SLOPE * ops.relu(-x)


def gelu(ops: Ops, x: Array) -> Array:
    """x times (about) the normal CDF of x, by the tanh approximation jax.nn.gelu uses."""
    return 0.5 * x * (1.0 + ops.tanh(np.sqrt(2.0 / np.pi) * (x + GELU_CUBIC * x**3)))


ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")
COMPOSED_ACTIVATIONS = {"leaky_relu": leaky_relu, "gelu": gelu}


def activation(ops: Ops, name: str) -> Callable[[Array], Array]:
    """The elementwise nonlinearity called `name` on this backend."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {list(ACTIVATIONS)}")
    if name in COMPOSED_ACTIVATIONS:
        return partial(COMPOSED_ACTIVATIONS[name], ops)
    return getattr(ops, name)


# name -> the weights' standard deviation for a layer of n_in inputs and n_out outputs
INIT_STDS: dict[str, Callable[[int, int], float]] = {
    "he": lambda n_in, n_out: np.sqrt(2.0 / n_in),
    "xavier": lambda n_in, n_out: np.sqrt(2.0 / (n_in + n_out)),
    "lecun": lambda n_in, n_out: np.sqrt(1.0 / n_in),
    "tiny": lambda n_in, n_out: 0.01 * np.sqrt(2.0 / n_in),
    "large": lambda n_in, n_out: 10.0 * np.sqrt(2.0 / n_in),
    "zeros": lambda n_in, n_out: 0.0,
}
INITS = tuple(INIT_STDS)


def init_std(scheme: str, n_in: int, n_out: int) -> float:
    """The standard deviation of `scheme`'s weights for a layer n_in -> n_out.

    "he": sqrt(2 / n_in), keeps ReLU activations' scale layer after layer. "xavier" (Glorot):
    sqrt(2 / (n_in + n_out)), keeps tanh/sigmoid out of saturation. "lecun": sqrt(1 / n_in).
    "tiny" and "large": He times 0.01 and times 10, to watch signals vanish or explode.
    "zeros": every weight 0, so every unit of a layer stays the same as its neighbours.
    """
    if scheme not in INIT_STDS:
        raise ValueError(f"unknown initialisation {scheme!r}; choose one of {list(INITS)}")
    return float(INIT_STDS[scheme](n_in, n_out))


def init_dense(
    rng: np.random.Generator, n_in: int, n_out: int, scheme: str
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_in, n_out) and zero biases (n_out,), float32.

    "xavier" draws uniformly in +-sqrt(6 / (n_in + n_out)) (Glorot's own choice); the others
    draw from a normal; each has the standard deviation `init_std` documents.
    """
    std = init_std(scheme, n_in, n_out)
    if scheme == "xavier":
        w = rng.uniform(-np.sqrt(3.0) * std, np.sqrt(3.0) * std, size=(n_in, n_out))
    else:
        w = rng.normal(0.0, std, size=(n_in, n_out))
    return w.astype(np.float32), np.zeros(n_out, np.float32)


def random_shift(key: jax.Array, images: jax.Array, max_shift: int = 2) -> jax.Array:
    """Move each image by its own random whole-pixel offset in [-max_shift, max_shift] per axis.

    images: (N, H, W) -> (N, H, W); pixels moved in from outside are 0 (background). Drawn digits
    are rarely centred the way MNIST is, so this buys robustness on the sketch page.
    Runs on JAX arrays (traced too), for any model family.
    """
    if max_shift == 0:
        return images
    n, h, w = images.shape
    offsets = jax.random.randint(key, (n, 2), 0, 2 * max_shift + 1)
    padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))

    def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
        return lax.dynamic_slice(image, (offset[0], offset[1]), (h, w))

    return jax.vmap(crop)(padded, offsets)


def numpy_rng(key: jax.Array) -> np.random.Generator:
    """A numpy generator seeded by a JAX key: numpy draws need no compile (a JAX draw compiles
    once per shape, about half a second each on a small CPU)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)))
