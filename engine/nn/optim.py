"""Hand-written optimizers (SGD, momentum, Nesterov, RMSProp, Adam) as pure `(init, update)` pairs.

A pytree here is any nesting of dicts/lists/tuples whose leaves are arrays. The same optimizer
serves numpy parameters (our autodiff engine) and JAX parameters (inside `jit`/`lax.scan`):
the updates use only arithmetic operators and `.astype`, which both array kinds share, and
`jax.tree_util.tree_map`, which treats numpy arrays as leaves.

    opt = adam(1e-3)
    state = opt.init(params)
    params, state = opt.update(params, grads, state)

Each update matches its `optax` counterpart (`optax.sgd`, `optax.sgd(momentum=)`,
`optax.sgd(momentum=, nesterov=True)`, `optax.rmsprop`, `optax.adam`);
tests/engine/nn/test_optim.py checks this over 100 steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from jax.tree_util import tree_map

PyTree = Any


class Optimizer(NamedTuple):
    """A pure optimizer: `init(params) -> state`; `update(params, grads, state)` returns the
    new `(params, state)`."""

    init: Callable[[PyTree], PyTree]
    update: Callable[[PyTree, PyTree, PyTree], tuple[PyTree, PyTree]]


def sgd(learning_rate: float) -> Optimizer:
    """Plain gradient descent: p <- p - lr * g. Its state is empty."""

    def init(params: PyTree) -> PyTree:
        return ()

    def update(params: PyTree, grads: PyTree, state: PyTree) -> tuple[PyTree, PyTree]:
        # Step downhill, proportionally to the slope.
        new_params = tree_map(lambda p, g: p - learning_rate * g, params, grads)
        return new_params, state

    return Optimizer(init, update)


def momentum(learning_rate: float, beta: float = 0.9) -> Optimizer:
    """Heavy-ball momentum, as `optax.sgd(lr, momentum=beta)`: v <- beta v + g; p <- p - lr v."""

    def init(params: PyTree) -> PyTree:
        return {"velocity": tree_map(lambda p: p * 0, params)}

    def update(params: PyTree, grads: PyTree, state: PyTree) -> tuple[PyTree, PyTree]:
        # Velocity: a running sum of past gradients, each older one damped by another factor beta.
        velocity = tree_map(lambda v, g: beta * v + g, state["velocity"], grads)
        # Move along the velocity, not the raw gradient: noise averages out, valleys speed up.
        new_params = tree_map(lambda p, v: p - learning_rate * v, params, velocity)
        return new_params, {"velocity": velocity}

    return Optimizer(init, update)


def nesterov(learning_rate: float, beta: float = 0.9) -> Optimizer:
    """Nesterov momentum, as `optax.sgd(lr, momentum=beta, nesterov=True)`:
    v <- beta v + g; p <- p - lr (g + beta v)."""

    def init(params: PyTree) -> PyTree:
        return {"velocity": tree_map(lambda p: p * 0, params)}

    def update(params: PyTree, grads: PyTree, state: PyTree) -> tuple[PyTree, PyTree]:
        # The same velocity as heavy-ball momentum...
        velocity = tree_map(lambda v, g: beta * v + g, state["velocity"], grads)
        # ...but the step looks ahead: the gradient plus where the velocity is about to carry us.
        new_params = tree_map(lambda p, g, v: p - learning_rate * (g + beta * v),
                              params, grads, velocity)
        return new_params, {"velocity": velocity}

    return Optimizer(init, update)


def rmsprop(learning_rate: float, decay: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSProp (Hinton, 2012), as `optax.rmsprop`: p <- p - lr g / sqrt(s + eps), where s is a
    moving average of g^2."""

    def init(params: PyTree) -> PyTree:
        return {"square": tree_map(lambda p: p * 0, params)}

    def update(params: PyTree, grads: PyTree, state: PyTree) -> tuple[PyTree, PyTree]:
        # Moving average of the squared gradient: each parameter's typical slope size.
        square = tree_map(lambda s, g: decay * s + (1 - decay) * g * g, state["square"], grads)
        # Divide by its root: steep directions take small steps, flat ones large (eps inside
        # the root, as optax does).
        new_params = tree_map(lambda p, g, s: p - learning_rate * g / (s + eps) ** 0.5,
                              params, grads, square)
        return new_params, {"square": square}

    return Optimizer(init, update)


def adam(
    learning_rate: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
) -> Optimizer:
    """Adam (Kingma & Ba, 2015), as `optax.adam`: a per-parameter step from gradient moments."""

    def init(params: PyTree) -> PyTree:
        return {
            "count": np.zeros((), np.int32),
            "mean": tree_map(lambda p: p * 0, params),
            "square": tree_map(lambda p: p * 0, params),
        }

    def update(params: PyTree, grads: PyTree, state: PyTree) -> tuple[PyTree, PyTree]:
        # Step number t, counted from 1: the bias corrections below need it.
        count = state["count"] + 1
        # First moment: exponential moving average of the gradient (its direction).
        mean = tree_map(lambda m, g: beta1 * m + (1 - beta1) * g, state["mean"], grads)
        # Second moment: moving average of the squared gradient (its typical size).
        square = tree_map(lambda s, g: beta2 * s + (1 - beta2) * g * g, state["square"], grads)
        # Both averages start at zero, so early on they are too small: divide by (1 - beta^t).
        correction1 = 1 - beta1**count
        correction2 = 1 - beta2**count

        def step(p, m, s):
            m_hat = m / correction1.astype(m.dtype)
            s_hat = s / correction2.astype(s.dtype)
            # Each parameter moves about lr per step, whatever its gradient's scale.
            return p - learning_rate * m_hat / (s_hat**0.5 + eps)

        new_params = tree_map(step, params, mean, square)
        return new_params, {"count": count, "mean": mean, "square": square}

    return Optimizer(init, update)


OPTIMIZERS: dict[str, Callable[[float], Optimizer]] = {
    "adam": adam,
    "momentum": momentum,
    "nesterov": nesterov,
    "rmsprop": rmsprop,
    "sgd": sgd,
}


def make_optimizer(name: str, learning_rate: float) -> Optimizer:
    """The optimizer called `name` (a key of OPTIMIZERS) with its default constants."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](learning_rate)
