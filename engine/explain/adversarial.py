"""How to fool a model: FGSM and PGD in the L-infinity ball, and the smallest epsilon that works.

Pixels stay in [0, 1] and within `epsilon` of the original. Untargeted attacks push the model's
loss on its own answer up; targeted ones push its loss on the target digit down (Goodfellow et
al. 2015, "Explaining and Harnessing Adversarial Examples"; Madry et al. 2018, "Towards Deep
Learning Models Resistant to Adversarial Attacks"). Every function takes a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from engine.models.family import Family
from engine.models.model import Model

ATTACKS = {"fgsm": "FGSM (one signed step)", "pgd": "PGD (20 projected steps)"}
PGD_STEPS = 20
BISECTION_ROUNDS = 8


class AttackError(ValueError):
    """An attack setting out of range (a negative epsilon, an unknown attack or target)."""


def attack_loss(logits: jax.Array, labels: jax.Array, targeted: bool) -> jax.Array:
    """What the attack climbs: cross-entropy on `labels` (n,) for logits (n, 10), negated when
    `labels` are targets (the attack then makes them more likely)."""
    picked = jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)
    return picked.sum() if targeted else -picked.sum()


def signed_step(params: Any, images: jax.Array, labels: jax.Array, size: jax.Array, *,
                family: Family, architecture: Any, targeted: bool) -> jax.Array:
    """images (n, 28, 28) moved by `size` along the sign of the attack loss's gradient."""
    def loss(x: jax.Array) -> jax.Array:
        return attack_loss(family.logits(params, x, architecture), labels, targeted)
    return images + size * jnp.sign(jax.grad(loss)(images))


def project(images: jax.Array, originals: jax.Array, epsilon: jax.Array) -> jax.Array:
    """The nearest images to `images` within `epsilon` (L-inf) of `originals`, pixels in [0, 1]."""
    return jnp.clip(jnp.clip(images, originals - epsilon, originals + epsilon), 0.0, 1.0)


@partial(jax.jit, static_argnames=("family", "architecture", "targeted", "steps"))
def _attack(params: Any, images: jax.Array, labels: jax.Array, epsilon: jax.Array, *,
            family: Family, architecture: Any, targeted: bool, steps: int) -> jax.Array:
    """steps = 1: FGSM (one step of size epsilon); more: PGD with steps of 2.5 epsilon / steps,
    each projected back into the ball and the pixel range."""
    size = epsilon if steps == 1 else 2.5 * epsilon / steps
    step = partial(signed_step, params, labels=labels, size=size, family=family,
                   architecture=architecture, targeted=targeted)

    def body(_: int, x: jax.Array) -> jax.Array:
        return project(step(x), images, epsilon)

    return jax.lax.fori_loop(0, steps, body, images)


def attack(model: Model, images: np.ndarray, labels: np.ndarray, epsilon: float, *,
           method: str = "pgd", target: int | None = None, steps: int = PGD_STEPS
           ) -> np.ndarray:
    """Adversarial images (n, 28, 28) in [0, 1], each within `epsilon` (L-inf) of its image.

    images: (n, 28, 28) floats in [0, 1]; labels: (n,) the answers to move away from (ignored
    when `target` is a digit: then every image is pushed toward it). method: "fgsm" or "pgd".
    """
    if method not in ATTACKS:
        raise AttackError(f"unknown attack {method!r}; choose one of {', '.join(ATTACKS)}.")
    if not 0.0 <= epsilon <= 1.0:
        raise AttackError(f"epsilon is a change of pixel brightness between 0 and 1; got "
                          f"{epsilon}.")
    if target is not None and not 0 <= target <= 9:
        raise AttackError(f"the target must be a digit from 0 to 9; got {target}.")
    images = np.asarray(images, np.float32)
    goal = np.full(len(images), target) if target is not None else np.asarray(labels)
    return np.asarray(_attack(model.params, images, jnp.asarray(goal, jnp.int32),
                              jnp.float32(epsilon), family=model.family,
                              architecture=model.architecture, targeted=target is not None,
                              steps=1 if method == "fgsm" else steps))


def answers(model: Model, images: np.ndarray) -> np.ndarray:
    """The model's digit (n,) for images (n, 28, 28)."""
    return model.predict_proba(images).argmax(axis=1)


@dataclass(frozen=True)
class EpsilonSearch:
    """The smallest epsilon found to change a model's answer (None: not even at `upper`)."""

    epsilon: float | None
    upper: float
    answer: int | None  # the model's answer at that epsilon


def smallest_epsilon(model: Model, image: np.ndarray, *, method: str = "pgd",
                     target: int | None = None, upper: float = 0.5,
                     rounds: int = BISECTION_ROUNDS) -> EpsilonSearch:
    """Bisection on epsilon in [0, upper] for the attack on one image (28, 28): the smallest
    epsilon (within upper / 2**rounds) at which the model's answer changes (untargeted) or
    becomes `target`. Assumes a stronger attack never undoes success, which holds in practice."""
    image = np.asarray(image, np.float32)[None]
    label = answers(model, image)

    def fooled(epsilon: float) -> tuple[bool, int]:
        answer = int(answers(model, attack(model, image, label, epsilon, method=method,
                                           target=target))[0])
        return (answer == target if target is not None else answer != label[0]), answer

    success, answer = fooled(upper)
    if not success:
        return EpsilonSearch(None, upper, None)
    low, high = 0.0, upper
    for _ in range(rounds):
        middle = (low + high) / 2
        middle_success, middle_answer = fooled(middle)
        if middle_success:
            high, answer = middle, middle_answer
        else:
            low = middle
    return EpsilonSearch(high, upper, answer)
