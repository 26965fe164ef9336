"""The benchmark MLP in plain numpy with hand-derived gradients: the reference of R1 and R2.

784-128-10, ReLU, softmax cross-entropy, float32, SGD with momentum. Everything is written out
by hand so it is as fast as honest numpy gets (float32 throughout, in place where it is natural);
our autodiff engine and JAX are timed against it with the same epoch loop (`run_epoch`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Params = dict[str, np.ndarray]
GradientFunction = Callable[[Params, np.ndarray, np.ndarray], tuple[float, Params]]


def init_params(seed: int = 0, sizes: tuple[int, int, int] = (784, 128, 10)) -> Params:
    """He-normal float32 weights w0 (784, 128), w1 (128, 10); zero biases b0 (128,), b1 (10,)."""
    rng = np.random.default_rng(seed)
    params: Params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        params[f"w{i}"] = rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out)).astype(np.float32)
        params[f"b{i}"] = np.zeros(n_out, np.float32)
    return params


def loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """Mean cross-entropy of a batch and its gradient for every parameter.

    x: (batch, 784) float32, y: (batch,) int labels. Returns (loss, grads with params' shapes).
    """
    n = len(x)
    rows = np.arange(n)
    # Forward: hidden pre-activation, ReLU (in place: the pre-activation is not needed again,
    # the mask h > 0 carries the same information), logits.
    h = x @ params["w0"]
    h += params["b0"]
    np.maximum(h, 0, out=h)
    z = h @ params["w1"]
    z += params["b1"]
    # Stable softmax: shift by the row max, then normalise.
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    total = p.sum(axis=1, keepdims=True)
    loss = float(np.log(total[:, 0]).mean() - z[rows, y].mean())
    p /= total
    # Backward. d loss / d logits = (softmax - one_hot) / n.
    dz = p
    dz[rows, y] -= 1
    dz *= np.float32(1 / n)
    grads = {"w1": h.T @ dz, "b1": dz.sum(axis=0)}
    dh = dz @ params["w1"].T
    dh *= h > 0  # ReLU passes the gradient only where it was active
    grads["w0"] = x.T @ dh
    grads["b0"] = dh.sum(axis=0)
    return loss, grads


def momentum_step(params: Params, grads: Params, velocity: Params, lr: float,
                  beta: float) -> None:
    """Heavy-ball momentum, in place: v <- beta v + g; p <- p - lr v (as optax.sgd(momentum=))."""
    for name, g in grads.items():
        v = velocity[name]
        v *= beta
        v += g
        params[name] -= lr * v


def run_epoch(gradient_fn: GradientFunction, params: Params, velocity: Params, x: np.ndarray,
              y: np.ndarray, order: np.ndarray, batch_size: int = 64, lr: float = 0.1,
              beta: float = 0.9) -> float:
    """One epoch of momentum SGD over x (n, 784) float32, y (n,) in `order`; mean batch loss.

    `gradient_fn` is `loss_and_grads` here, or the same computation by another differentiator,
    so every contender runs exactly this loop.
    """
    losses = []
    for start in range(0, len(order) - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        loss, grads = gradient_fn(params, x[idx], y[idx])
        momentum_step(params, grads, velocity, lr, beta)
        losses.append(loss)
    return float(np.mean(losses))
