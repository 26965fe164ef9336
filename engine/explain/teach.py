"""Teach a model one drawing: a few optimiser steps on a copy, and what they changed.

The steps are the training loop's own: an `engine.training.loop.StepRule` run by its
`jax_stepper` (the same loss, optimizer and compiled chunk as in the rooms) on a batch of one,
with the model in
inference mode (no shift augmentation, no dropout, no decay) so that the step teaches exactly the
image the learner sees. The optimizer starts fresh, as a model file keeps no optimizer state.
The model passed in is never changed: a new Model comes back, and undo is keeping the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from engine.data.mnist import N_CLASSES, as_float
from engine.models.family import Family
from engine.models.model import Model
from engine.nn.optim import OPTIMIZERS
from engine.training.loop import StepRule, jax_stepper

MAX_STEPS = 10
DEFAULT_OPTIMIZER = "adam"
DEFAULT_LEARNING_RATE = 1e-3


class TeachError(ValueError):
    """A teaching request no step can carry out (a label that is no digit, zero steps...)."""


def inference_logits(params: Any, x: jax.Array, key: jax.Array | None, *,
                     arch: tuple[Family, Any]) -> jax.Array:
    """`StepRule` logits (B, 10) of x (B, 28, 28) for arch = (family, architecture), without
    any training-time randomness (the key is unused)."""
    family, architecture = arch
    return family.logits(params, x, architecture)


def training_settings(model: Model) -> tuple[str, str, float]:
    """(loss, optimizer, learning rate) the model was trained with, per its metadata; a model
    file without them (an upload from elsewhere) gets cross-entropy and Adam at 1e-3."""
    training = model.metadata.get("training", {})
    loss = training.get("loss", "cross_entropy")
    optimizer = training.get("optimizer", DEFAULT_OPTIMIZER)
    if optimizer not in OPTIMIZERS:
        optimizer = DEFAULT_OPTIMIZER
    return loss, optimizer, float(training.get("learning_rate", DEFAULT_LEARNING_RATE))


def teach_rule(model: Model, learning_rate: float | None = None) -> StepRule:
    """The step rule that teaches `model`: its training loss and optimizer, at `learning_rate`
    (default: the one it was trained with)."""
    loss, optimizer, trained_rate = training_settings(model)
    rate = trained_rate if learning_rate is None else learning_rate
    return StepRule(inference_logits, (model.family, model.architecture), loss, optimizer,
                    rate)


def check_request(image: np.ndarray, label: int, steps: int, learning_rate: float | None) -> None:
    """Raise TeachError naming the first thing no teaching step can use."""
    if np.shape(image) != (28, 28):
        raise TeachError(f"the image must be 28x28 pixels, got shape {np.shape(image)}")
    if not 0 <= label < N_CLASSES:
        raise TeachError(f"the label must be a digit from 0 to 9, got {label}")
    if not 1 <= steps <= MAX_STEPS:
        raise TeachError(f"take 1 to {MAX_STEPS} steps, not {steps}")
    if learning_rate is not None and not (0 < learning_rate < 1):
        raise TeachError(f"the learning rate must be between 0 and 1, got {learning_rate}")


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Teaching:
    """One teaching: the taught copy and the training loss on the drawing before each step.

    losses: (steps,).
    """

    model: Model
    losses: np.ndarray


def teach(model: Model, image: np.ndarray, label: int, *, steps: int = 1,
          learning_rate: float | None = None) -> Teaching:
    """A copy of `model` after `steps` optimiser steps on image (28, 28) floats in [0, 1],
    labelled `label`. Each step is one compiled training chunk of one step (batch of one), so
    every step count reuses one compiled program; the optimizer's state carries over."""
    check_request(image, label, steps, learning_rate)
    x = np.asarray(image, np.float32)[None]
    stepper = jax_stepper(teach_rule(model, learning_rate), x, np.array([label]),
                          jax.random.key(0))
    params, state = model.params, stepper.init(model.params)
    losses = []
    for _ in range(steps):
        params, state, loss = stepper.run(params, state, np.zeros((1, 1), np.int32))
        losses.append(float(loss[0]))
    taught = Model(model.family, model.architecture, params,
                   {**model.metadata, "taught": {"label": int(label), "steps": steps}})
    return Teaching(taught, np.asarray(losses))


# --- what the teaching changed ---------------------------------------------------------------


def first_layer_weights(model: Model) -> np.ndarray:
    """The first layer's weights as images: (units, 28, 28) for a feed-forward net (each hidden
    unit's incoming weights; with no hidden layer, each class's), (filters, k, k) for a CNN."""
    return model.family.first_layer_images(model.params)


@dataclass(frozen=True)
class WeightChange:
    """The first-layer units whose weights changed most. units: their indices (k,); change:
    after - before as images (k, h, w); size: each one's largest |change| (k,)."""

    units: np.ndarray
    change: np.ndarray
    size: np.ndarray


def first_layer_change(before: Model, after: Model, top: int = 8) -> WeightChange:
    """The `top` first-layer units (or every filter, if fewer) whose weights moved furthest
    (Euclidean length of the change), most changed first. Adam moves every weight with a
    gradient by about the learning rate, so the largest single change would tie everywhere."""
    change = first_layer_weights(after) - first_layer_weights(before)
    flat = change.reshape(len(change), -1)
    units = np.argsort(-np.linalg.norm(flat, axis=1), kind="stable")[:top]
    return WeightChange(units, change[units], np.abs(flat[units]).max(axis=1))


@dataclass(frozen=True)
class AnswerChanges:
    """Which test digits changed their answer. helped: wrong before, right after; hurt: right
    before, wrong after; switched: wrong before and after, but a different wrong answer. Each an
    index array into the test set; before/after: every answer (n,)."""

    before: np.ndarray
    after: np.ndarray
    helped: np.ndarray
    hurt: np.ndarray
    switched: np.ndarray


def answer_changes(before: Model, after: Model, x_test: np.ndarray, y_test: np.ndarray
                   ) -> AnswerChanges:
    """How teaching moved the answers on x_test (n, 28, 28) uint8 or float, labels y_test (n,)."""
    images = as_float(np.asarray(x_test))
    old = before.predict_proba(images).argmax(axis=1)
    new = after.predict_proba(images).argmax(axis=1)
    right_before, right_after = old == y_test, new == y_test
    return AnswerChanges(old, new, np.flatnonzero(~right_before & right_after),
                         np.flatnonzero(right_before & ~right_after),
                         np.flatnonzero(~right_before & ~right_after & (old != new)))
