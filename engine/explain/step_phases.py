"""One training step of a feed-forward net, phase by phase, with every intermediate matrix.

The forward pass, the loss, the backward pass and the update are written out by hand here (numpy,
float32), so a learner can see each matrix; every gradient is put beside `jax.grad`'s of the
engine's own model (engine.ffnn), and the update is the room's optimizer from engine.nn.optim.

Layer i (1-based, as on screen) stores W_i = params["w{i-1}"] (n_in, n_out), b_i (n_out,):

    forward:  z_i = a_{i-1} @ W_i + b_i,  a_i = act(z_i)   (a_0 = x (B, 784); last z: logits)
    backward: delta_L = dL/dlogits,  dW_i = a_{i-1}^T delta_i,  db_i = sum_b delta_i,
              delta_{i-1} = (delta_i @ W_i^T) * act'(z_{i-1})
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from engine import ffnn
from engine.data.mnist import N_CLASSES, as_float
from engine.nn.layers import JAX_OPS, activation, numpy_one_hot
from engine.nn.optim import make_optimizer


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class LayerStep:
    """Everything one dense layer did in the step; B is the batch size.

    a_in (B, n_in), w (n_in, n_out), b (n_out,), z (B, n_out), a_out (B, n_out) (the logits, no
    activation, for the last layer); delta = dL/dz (B, n_out); dw (n_in, n_out) and db (n_out,)
    by hand, dw_jax and db_jax from jax.grad; w_after, b_after after the optimizer's update.
    """

    a_in: np.ndarray
    w: np.ndarray
    b: np.ndarray
    z: np.ndarray
    a_out: np.ndarray
    delta: np.ndarray
    dw: np.ndarray
    db: np.ndarray
    dw_jax: np.ndarray
    db_jax: np.ndarray
    w_after: np.ndarray
    b_after: np.ndarray

    @property
    def max_gradient_difference(self) -> float:
        """max |hand-written - jax.grad| over this layer's weight and bias gradients."""
        return max(float(np.abs(self.dw - self.dw_jax).max()),
                   float(np.abs(self.db - self.db_jax).max()))


@dataclass(frozen=True, eq=False)
class StepPhases:
    """One step on a batch: labels (B,), probabilities (B, 10), one_hot (B, 10), the batch's
    loss (hand-written) and jax's, each layer's LayerStep, the hidden layers' activation and
    how the update was made."""

    labels: np.ndarray
    probabilities: np.ndarray
    one_hot: np.ndarray
    loss: float
    loss_jax: float
    layers: tuple[LayerStep, ...]
    activation: str
    optimizer: str
    learning_rate: float

    @property
    def logits(self) -> np.ndarray:
        """(B, 10): the last layer's output."""
        return self.layers[-1].z


# --- the hand-written pieces ---------------------------------------------------------------


def activation_and_slope(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(act(z), act'(z)), both z's shape, for any activation of engine.nn.layers.

    The value is the engine's own activation; the slope its elementwise derivative (jax.grad of
    the scalar function, mapped over every unit), so a new activation needs nothing here.
    """
    scalar = activation(JAX_OPS, name)
    flat = jnp.asarray(z, jnp.float32).ravel()
    slope = jax.vmap(jax.grad(scalar))(flat).reshape(np.shape(z))
    return np.asarray(scalar(jnp.asarray(z))), np.asarray(slope)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax (B, C) -> (B, C), shifted by each row's max so exp cannot overflow."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def loss_and_logit_gradient(probabilities: np.ndarray, one_hot: np.ndarray, loss_name: str
                            ) -> tuple[float, np.ndarray]:
    """(the batch's mean loss, dL/dlogits (B, 10)) from softmax probabilities and one-hot labels.

    cross_entropy: L = mean_b -log p[b, y_b], dL/dlogits = (p - onehot) / B.
    mse: L = mean_b sum_c (p - onehot)^2; g = dL/dp = 2 (p - onehot) / B goes back through the
    softmax's Jacobian: dL/dlogits = p * (g - sum_c g p).
    """
    batch = len(probabilities)
    if loss_name == "cross_entropy":
        picked = (probabilities * one_hot).sum(axis=1)
        return float(-np.log(picked).mean()), (probabilities - one_hot) / batch
    if loss_name == "mse":
        error = probabilities - one_hot
        g = 2 * error / batch
        return float((error**2).sum(axis=1).mean()), probabilities * (
            g - (g * probabilities).sum(axis=1, keepdims=True))
    raise ValueError(f"unknown loss {loss_name!r}")


def check_batch(images: np.ndarray, labels: np.ndarray) -> None:
    """Raise ValueError unless images (B, 28, 28), labels (B,) digits 0-9, and B >= 1."""
    if len(images) == 0:
        raise ValueError("the batch is empty: pick at least one digit")
    if images.shape[1:] != (28, 28) or labels.shape != (len(images),):
        raise ValueError(f"need images (B, 28, 28) and labels (B,), got {images.shape} and "
                         f"{labels.shape}")
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise ValueError(f"labels must be digits 0-9, got {sorted(set(labels.tolist()))}")


def forward_layers(params: ffnn.Params, x: np.ndarray, arch: ffnn.Architecture
                   ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per layer (a_in, z, a_out) for x (B, 784); the last a_out is z itself (the logits)."""
    out, a = [], x
    for i in range(arch.n_layers):
        z = a @ params[f"w{i}"] + params[f"b{i}"]
        a_out = activation_and_slope(arch.activation, z)[0] if i < arch.n_layers - 1 else z
        out.append((a, z, a_out))
        a = a_out
    return out


def backward_layers(params: ffnn.Params, forward: list, dlogits: np.ndarray, activation_name: str
                    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per layer (delta (B, n_out), dW (n_in, n_out), db (n_out,)), first layer first."""
    out, delta = [], dlogits
    for i in reversed(range(len(forward))):
        a_in = forward[i][0]
        out.append((delta, a_in.T @ delta, delta.sum(axis=0)))
        if i > 0:
            slope = activation_and_slope(activation_name, forward[i - 1][1])[1]
            delta = (delta @ params[f"w{i}"].T) * slope
    return out[::-1]


# --- the whole step --------------------------------------------------------------------------


def step_phases(params: ffnn.Params, images: np.ndarray, labels: np.ndarray, *,
                arch: ffnn.Architecture, loss_name: str = "cross_entropy",
                optimizer: str = "sgd", learning_rate: float = 0.1) -> StepPhases:
    """One training step on images (B, 28, 28) (uint8 or floats in [0, 1]) and labels (B,).

    The optimizer starts from a fresh state (a model keeps no optimizer state), so the update
    is that optimizer's first step. Raises ValueError for an empty or malformed batch, and for
    a net with batch norm (written out here are dense layers and activations only).
    """
    if arch.batch_norm:
        raise ValueError("One step is written out for nets without batch norm, and this one "
                         "has it: train one without the Batch norm box to follow its step.")
    images, labels = as_float(np.asarray(images)), np.asarray(labels, np.int64)
    check_batch(images, labels)
    params = {name: np.asarray(value, np.float32) for name, value in params.items()}
    forward = forward_layers(params, images.reshape(len(images), -1), arch)
    probabilities = softmax(forward[-1][2])
    one_hot = numpy_one_hot(labels, N_CLASSES)
    loss, dlogits = loss_and_logit_gradient(probabilities, one_hot, loss_name)
    backward = backward_layers(params, forward, dlogits, arch.activation)
    loss_jax, grads_jax = ffnn.gradients(params, images, labels, arch=arch, loss_name=loss_name,
                                         backend="jax")
    grads = {}
    for i, (_, dw, db) in enumerate(backward):
        grads[f"w{i}"], grads[f"b{i}"] = dw, db
    opt = make_optimizer(optimizer, learning_rate)
    after, _ = opt.update(params, grads, opt.init(params))
    layers = []
    for i in range(arch.n_layers):
        a_in, z, a_out = forward[i]
        w, b = f"w{i}", f"b{i}"
        layers.append(LayerStep(a_in, params[w], params[b], z, a_out, *backward[i],
                                grads_jax[w], grads_jax[b], np.asarray(after[w]),
                                np.asarray(after[b])))
    return StepPhases(labels, probabilities, one_hot, loss, loss_jax, tuple(layers),
                      arch.activation, optimizer, learning_rate)


# --- the sum behind one number ---------------------------------------------------------------

CELL_KINDS = {
    "z": "z = a_in @ W + b (forward)",
    "dw": "dW = a_in^T delta (backward)",
    "delta": "delta = (delta_next @ W_next^T) * act'(z) (backward)",
}


@dataclass(frozen=True, eq=False)
class CellSum:
    """One number as the sum that produced it: value = (sum of left * right) + offset, then
    times `factor` (act'(z) for a hidden delta, else 1). left, right, terms: (n,)."""

    value: float
    left: np.ndarray
    right: np.ndarray
    offset: float
    factor: float

    @property
    def terms(self) -> np.ndarray:
        return self.left * self.right

    def top(self, count: int) -> np.ndarray:
        """The indices of the `count` terms of largest magnitude, largest first."""
        return np.argsort(-np.abs(self.terms), kind="stable")[:count]


def cell_sum(phases: StepPhases, kind: str, layer: int, row: int, col: int) -> CellSum:
    """The sum behind cell (row, col) of layer `layer`'s (1-based) matrix `kind` (CELL_KINDS).

    Raises IndexError with the valid ranges when the cell or layer does not exist.
    """
    if kind not in CELL_KINDS:
        raise ValueError(f"unknown matrix {kind!r}; choose one of {sorted(CELL_KINDS)}")
    n = len(phases.layers)
    last = n - 1 if kind == "delta" else n  # the last delta is dL/dlogits: no sum behind it
    if not 1 <= layer <= last:
        raise IndexError(f"layer {layer} does not exist here: choose 1 to {last}")
    step = phases.layers[layer - 1]
    matrix = {"z": step.z, "dw": step.dw, "delta": step.delta}[kind]
    rows, cols = matrix.shape
    if not (0 <= row < rows and 0 <= col < cols):
        raise IndexError(f"cell ({row}, {col}) is outside this {rows}x{cols} matrix: row 0 to "
                         f"{rows - 1}, column 0 to {cols - 1}")
    if kind == "z":
        return CellSum(float(matrix[row, col]), step.a_in[row], step.w[:, col],
                       float(step.b[col]), 1.0)
    if kind == "dw":
        return CellSum(float(matrix[row, col]), step.a_in[:, row], step.delta[:, col], 0.0, 1.0)
    after = phases.layers[layer]
    _, slope = activation_and_slope(phases.activation, step.z[row, col])
    return CellSum(float(matrix[row, col]), after.delta[row], after.w[col], 0.0, float(slope))
