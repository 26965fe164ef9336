"""The classic sanity check: a small net trained by our autodiff engine memorises one digit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import jax
import numpy as np

from engine import ffnn
from engine.nn.layers import autodiff_ops
from engine.nn.optim import make_optimizer

ARCH = ffnn.Architecture(hidden=(32,), activation="relu")
MAX_STEPS = 300


@dataclass(frozen=True)
class OverfitStep:
    """The state after `step` updates: the loss before that update and the probabilities (10,)."""

    step: int
    loss: float
    probabilities: np.ndarray


def probabilities(params: ffnn.Params, image: np.ndarray) -> np.ndarray:
    """Class probabilities (10,) of one float image (28, 28), by our engine's forward pass."""
    ops = autodiff_ops()
    constants = {name: ops.constant(value) for name, value in params.items()}
    log_p = ops.log_softmax(ffnn.forward(constants, ops.constant(image[None]), arch=ARCH, ops=ops))
    return np.exp(log_p.data[0])


def overfit_one_image(image: np.ndarray, label: int, steps: int = 60,
                      learning_rate: float = 0.01, seed: int = 0) -> Iterator[OverfitStep]:
    """Train a fresh 784-32-10 ReLU net with SGD on the single image (28, 28) float in [0, 1]
    and its label; yield the state after every update (plus step 0, before any).

    The loss should fall towards 0: if a net cannot memorise one example, its gradients are wrong.
    """
    steps = int(np.clip(steps, 1, MAX_STEPS))
    params = ffnn.init_params(jax.random.key(seed), ARCH)
    optimizer = make_optimizer("sgd", learning_rate)
    state = optimizer.init(params)
    loss_and_grads = ffnn.autodiff_loss_and_grads(ARCH, "cross_entropy")
    x, y = image[None].astype(np.float32), np.array([label])
    for step in range(steps + 1):
        loss, grads = loss_and_grads(params, x, y)
        yield OverfitStep(step, loss, probabilities(params, image))
        if step < steps:
            params, state = optimizer.update(params, grads, state)
