"""The learning-rate range test (Smith 2017): one short pass with a rate growing exponentially.

Train a copy of the model for `steps` batches, the learning rate multiplied by the same factor
every step from `low` to `high`; record the loss, smooth it, stop where it blows up. The loss
first barely moves (rate too small), then falls (useful rates), then climbs (too large). The
suggestion is where the smoothed loss falls fastest, per decade of learning rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import numpy as np

from engine.nn.optim import make_optimizer

PyTree = Any
SMOOTHING = 0.9  # the loss's exponential moving average keeps this much of its past
BLOWUP = 4.0  # the smoothed loss above this x its lowest so far: diverged, the test stops


@dataclass(frozen=True)
class RangeTest:
    """What the range test measured and suggests.

    rates, losses, smoothed: (n,) for the n steps kept (up to the blow-up, if any). suggestion:
    the rate to train with, None when the loss never fell. reason: why, in one sentence.
    diverged_at: the rate at which the loss blew up (None if it never did).
    """

    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float | None
    reason: str
    diverged_at: float | None


def rate_schedule(low: float, high: float, steps: int) -> np.ndarray:
    """(steps,) float32 rates from low to high, each the previous times the same factor."""
    if not 0 < low < high or steps < 2:
        raise ValueError(f"need 0 < low < high and at least 2 steps, got {low}, {high}, {steps}")
    return np.geomspace(low, high, steps).astype(np.float32)


def smooth(losses: np.ndarray, keep: float = SMOOTHING) -> np.ndarray:
    """The exponential moving average of losses (n,), bias-corrected so it starts on the first
    loss rather than at 0."""
    average, out = 0.0, np.empty(len(losses))
    for i, value in enumerate(losses):
        average = keep * average + (1 - keep) * value
        out[i] = average / (1 - keep ** (i + 1))
    return out


def sweep(loss_fn: Callable[..., jax.Array], optimizer_name: str, params: PyTree,
          x_all: np.ndarray, y_all: np.ndarray, batches: np.ndarray, rates: np.ndarray
          ) -> np.ndarray:
    """The losses (steps,) of len(rates) optimizer steps, step i on the examples batches[i]
    (steps, B) of x_all (n, ...) and y_all (n,) with learning rate rates[i], in one jitted
    lax.scan (the data goes to the device once). loss_fn(params, x, y) -> scalar.

    The optimizer is built with rate 1 and its move scaled by each step's rate: every optimizer
    here moves by learning rate x a direction that does not depend on it.
    """
    optimizer = make_optimizer(optimizer_name, 1.0)
    value_and_grad = jax.value_and_grad(loss_fn)

    def step(x_all, y_all, carry, inputs):
        params, state = carry
        indices, rate = inputs
        value, grads = value_and_grad(params, x_all[indices], y_all[indices])
        moved, state = optimizer.update(params, grads, state)
        params = jax.tree_util.tree_map(lambda p, m: p + rate * (m - p), params, moved)
        return (params, state), value

    @jax.jit
    def run(params, x_all, y_all, batches, rates):
        return jax.lax.scan(partial(step, x_all, y_all), (params, optimizer.init(params)),
                            (batches, rates))[1]

    return np.asarray(run(params, x_all, y_all, batches, rates), np.float64)


def blowup_index(smoothed: np.ndarray, factor: float = BLOWUP) -> int | None:
    """The first step whose smoothed loss (n,) is non-finite or above factor x the lowest
    before it; None if there is none."""
    lowest = np.inf
    for i, value in enumerate(smoothed):
        if not np.isfinite(value) or value > factor * lowest:
            return i
        lowest = min(lowest, value)
    return None


def suggestion(rates: np.ndarray, smoothed: np.ndarray) -> tuple[float | None, str]:
    """(rate, reason): where the smoothed loss (n,) falls fastest per decade of rate (n,),
    looking only up to its lowest point."""
    end = int(np.argmin(smoothed)) + 1
    if end < 3:
        return None, ("The loss never fell: the rates tried are all too large, or the model "
                      "cannot learn from here.")
    slopes = np.gradient(smoothed[:end], np.log10(rates[:end]))
    best = int(np.argmin(slopes))
    if slopes[best] >= 0:
        return None, "The loss never fell over the rates tried: try larger ones."
    return float(rates[best]), (f"The loss falls fastest at {rates[best]:.1e}: "
                                f"{-slopes[best]:.2f} per tenfold rate, before its lowest "
                                f"point at {rates[end - 1]:.1e}.")


def range_test(loss_fn: Callable[..., jax.Array], optimizer_name: str, params: PyTree,
               x_all: np.ndarray, y_all: np.ndarray, batches: np.ndarray, low: float = 1e-6,
               high: float = 1.0) -> RangeTest:
    """The range test of params under loss_fn(params, x, y), one step per row of batches
    (steps, B) indexing x_all (n, ...) and y_all (n,), rates from low to high. params is not
    changed."""
    rates = rate_schedule(low, high, len(batches))
    losses = sweep(loss_fn, optimizer_name, params, x_all, y_all, batches, rates)
    smoothed = smooth(losses)
    stop = blowup_index(smoothed)
    kept = len(rates) if stop is None else stop
    rate, reason = suggestion(rates[:kept], smoothed[:kept])
    return RangeTest(rates[:kept], losses[:kept], smoothed[:kept], rate, reason,
                     None if stop is None else float(rates[stop]))


def image_loss(params: PyTree, x: jax.Array, y: jax.Array, *, arch: Any, loss_name: str
               ) -> jax.Array:
    """The feed-forward loss of uint8 images x (B, 28, 28) and labels y (B,)."""
    from engine.data.mnist import as_float
    from engine.ffnn.model import loss

    return loss(params, as_float(x), y, arch=arch, loss_name=loss_name)


def ffnn_range_test(config: Any, x_train: np.ndarray, y_train: np.ndarray, params: PyTree,
                    steps: int = 100, low: float = 1e-5, high: float = 10.0) -> RangeTest:
    """The range test of a feed-forward net (config: ffnn.TrainingConfig, its loss, optimizer
    and batch size) from params, on `steps` batches of x_train uint8 (n, 28, 28), y_train (n,)
    drawn with config.seed."""
    order = np.random.default_rng(config.seed).permutation(len(x_train))
    batches = np.resize(order, steps * config.batch_size).reshape(steps, config.batch_size)
    return range_test(partial(image_loss, arch=config.arch, loss_name=config.loss),
                      config.optimizer, params, x_train, np.asarray(y_train, np.int32),
                      batches.astype(np.int32), low, high)
