"""One training loop for every model: chunks of steps, progress events, stop, divergence guard.

A model is a set of pure functions over a pytree of parameters:

- a loss `loss(params, x, y) -> scalar` (x: float32 images (batch, 28, 28) in [0, 1],
  y: int labels (batch,)), or for our autodiff engine `loss_and_grads(params, x, y)`;
- a `predict(params, x) -> labels (n,)` used for the accuracies.

A *backend* decides how a chunk of optimisation steps is computed; it is a `Stepper`:

- `jax_stepper(loss, optimizer, x_train, y_train)`: `jax.grad`, the whole chunk jitted as one
  `lax.scan` over pre-shuffled batch indices, the uint8 training images kept on the device;
- `numpy_stepper(loss_and_grads, optimizer, x_train, y_train)`: a Python loop over steps
  (our autodiff engine, or any function returning numpy gradients).

`train(stepper, params, split, schedule, predict, stop=...)` then yields a `Progress` event after
every chunk. The caller can chart them, stop the run between chunks by setting `stop`, or just
take the last event, which carries the final parameters, the history and why it ended.

    for event in train(stepper, params, split, Schedule(epochs=3, batch_size=128), predict):
        print(event.step, event.loss, event.val_accuracy)
    event.params, event.history, event.status  # the final event
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from engine.data import as_float, epoch_permutation
from engine.optim import Optimizer

PyTree = Any


class Stepper(Protocol):
    """How optimisation steps are computed on one backend."""

    def init(self, params: PyTree) -> PyTree:
        """The optimizer state for these parameters."""

    def run(self, params: PyTree, state: PyTree, batches: np.ndarray) -> tuple[PyTree, PyTree,
                                                                              np.ndarray]:
        """Take len(batches) steps; batches (steps, batch_size) indexes the training set.

        Returns the new parameters, the new optimizer state and the losses (steps,), each
        computed before its step's update. A backend may stop early at a non-finite loss and
        return fewer losses.
        """


@dataclass(frozen=True)
class JaxStepper:
    """Steps by `jax.grad`; one jitted `lax.scan` per chunk. See `jax_stepper`."""

    optimizer: Optimizer
    chunk: Callable[..., tuple[PyTree, PyTree, jax.Array]]
    x_train: jax.Array
    y_train: jax.Array

    def init(self, params: PyTree) -> PyTree:
        return self.optimizer.init(params)

    def run(self, params: PyTree, state: PyTree, batches: np.ndarray) -> tuple[PyTree, PyTree,
                                                                              np.ndarray]:
        params, state, losses = self.chunk(params, state, self.x_train, self.y_train, batches)
        return params, state, np.asarray(losses)


def jax_chunk(loss: Callable[[PyTree, jax.Array, jax.Array], jax.Array], optimizer: Optimizer
              ) -> Callable[..., tuple[PyTree, PyTree, jax.Array]]:
    """`chunk(params, state, x_all, y_all, batches) -> (params, state, losses)`: one step of
    `optimizer` on the JAX-traceable `loss(params, x, y)` per row of batches (steps, batch),
    gradients by `jax.grad`, all jitted as one `lax.scan`.

    x_all: uint8 (n, 28, 28) and y_all: int32 (n,) on the device; each step gathers its batch
    and scales it to [0, 1] there. They are arguments rather than closed over, so they are not
    baked into the compiled program, and one chunk serves any run of the same model.
    """
    value_and_grad = jax.value_and_grad(loss)

    @jax.jit
    def chunk(params, state, x_all, y_all, batches):
        def step(carry, indices):
            params, state = carry
            x = x_all[indices].astype(jnp.float32) / 255.0
            value, grads = value_and_grad(params, x, y_all[indices])
            params, state = optimizer.update(params, grads, state)
            return (params, state), value

        (params, state), losses = jax.lax.scan(step, (params, state), batches)
        return params, state, losses

    return chunk


def jax_stepper(loss: Callable[[PyTree, jax.Array, jax.Array], jax.Array], optimizer: Optimizer,
                x_train: np.ndarray, y_train: np.ndarray, *,
                chunk: Callable[..., tuple[PyTree, PyTree, jax.Array]] | None = None
                ) -> JaxStepper:
    """A stepper differentiating the JAX-traceable `loss(params, x, y)` with `jax.grad`.

    x_train: uint8 (n, 28, 28), y_train: int (n,), sent to the device once. chunk: a
    `jax_chunk(loss, optimizer)` kept from an earlier run, so that nothing compiles again.
    """
    return JaxStepper(optimizer, chunk or jax_chunk(loss, optimizer), jnp.asarray(x_train),
                      jnp.asarray(np.asarray(y_train, np.int32)))


@dataclass(frozen=True)
class NumpyStepper:
    """Steps by a function returning numpy gradients (our autodiff engine). See `numpy_stepper`."""

    optimizer: Optimizer
    loss_and_grads: Callable[[PyTree, np.ndarray, np.ndarray], tuple[float, PyTree]]
    x_train: np.ndarray
    y_train: np.ndarray

    def init(self, params: PyTree) -> PyTree:
        return self.optimizer.init(params)

    def run(self, params: PyTree, state: PyTree, batches: np.ndarray) -> tuple[PyTree, PyTree,
                                                                              np.ndarray]:
        losses = []
        # Overflow to inf/NaN is what the divergence guard looks for, not a reason for warnings.
        with np.errstate(all="ignore"):
            for indices in batches:
                x = as_float(self.x_train[indices])
                value, grads = self.loss_and_grads(params, x, self.y_train[indices])
                losses.append(value)
                if not np.isfinite(value):
                    break
                params, state = self.optimizer.update(params, grads, state)
        return params, state, np.asarray(losses, np.float64)


def numpy_stepper(loss_and_grads: Callable[[PyTree, np.ndarray, np.ndarray], tuple[float, PyTree]],
                  optimizer: Optimizer, x_train: np.ndarray, y_train: np.ndarray) -> NumpyStepper:
    """A stepper calling `loss_and_grads(params, x, y) -> (loss, grads)` once per step.

    x_train: uint8 (n, 28, 28), y_train: int (n,); each batch is scaled to [0, 1] float32.
    """
    return NumpyStepper(optimizer, loss_and_grads, x_train, np.asarray(y_train))


@dataclass(frozen=True)
class Schedule:
    """How long to train and how finely to report.

    chunk_steps: at most this many steps run between two events (and two stop checks); pick it
    so that a chunk takes well under a second. Each epoch is cut into near-equal chunks, so a
    JAX stepper compiles at most two chunk lengths.
    evals_per_epoch: how often validation and test accuracy are measured.
    blowup_factor: a loss above this many times the first loss counts as diverged.
    """

    epochs: int
    batch_size: int
    seed: int = 0
    chunk_steps: int = 32
    evals_per_epoch: int = 4
    blowup_factor: float = 10.0


@dataclass(frozen=True)
class History:
    """Everything measured so far: the loss of every step, and accuracies at each evaluation."""

    losses: tuple[float, ...] = ()
    eval_steps: tuple[int, ...] = ()
    val_accuracy: tuple[float, ...] = ()
    test_accuracy: tuple[float, ...] = ()


@dataclass(frozen=True)
class Progress:
    """One event of a training run (after a chunk of steps).

    epoch: epochs completed, fractional. loss: mean training loss over the last chunk.
    val_accuracy/test_accuracy/snapshot: from the latest evaluation (None before the first).
    status: "running" until the last event, then "finished", "stopped" or "diverged"; message
    says why it ended in words a user can act on. params: the final (last good) parameters,
    as numpy arrays, on the last event only.
    """

    step: int
    total_steps: int
    epoch: float
    epochs: int
    loss: float
    val_accuracy: float | None
    test_accuracy: float | None
    elapsed: float
    eta: float
    history: History
    snapshot: Any = None
    status: str = "running"
    message: str = ""
    params: PyTree = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.status != "running"


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Counts (n_classes, n_classes) int: row = true label, column = predicted label."""
    pairs = np.asarray(y_true, np.int64) * n_classes + np.asarray(y_pred, np.int64)
    return np.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def all_finite(tree: PyTree) -> bool:
    """True if every leaf of the pytree is free of NaN and inf."""
    leaves = jax.tree_util.tree_leaves(tree)
    return all(bool(np.isfinite(np.asarray(leaf)).all()) for leaf in leaves)


def divergence(losses: np.ndarray, n_steps: int, params: PyTree, blowup_limit: float | None
               ) -> str:
    """Why a chunk with these losses (steps,) and resulting params diverged, or "" if it did not.

    Diverged: a loss or parameter is NaN/inf, the stepper stopped early (it does so at a
    non-finite loss), or a loss exceeds blowup_limit. The last catches what a numerically
    stable loss hides: a cross-entropy that climbs to 1e4 stays finite, yet the net is lost.
    """
    if len(losses) < n_steps or not np.isfinite(losses).all():
        return "The loss became NaN or infinite"
    if blowup_limit is not None and losses.max() > blowup_limit:
        return f"The loss blew up to {losses.max():.3g}, far above where it started"
    if not all_finite(params):
        return "The parameters became NaN or infinite"
    return ""


def epoch_chunks(n_train: int, schedule: Schedule, epoch: int) -> list[np.ndarray]:
    """Epoch `epoch`'s batches of training indices, cut into equal (or near-equal) chunks.

    Each chunk is (steps, batch_size) int32; the last n_train % batch_size digits of the
    shuffled order sit this epoch out (every batch has the same shape).
    """
    steps = n_train // schedule.batch_size
    order = epoch_permutation(n_train, schedule.seed, epoch)[: steps * schedule.batch_size]
    batches = order.reshape(steps, schedule.batch_size).astype(np.int32)
    fewest = -(-steps // schedule.chunk_steps)
    # Equal chunks compile one JAX program, not two: take a few more chunks if that evens them.
    n_chunks = next((n for n in range(fewest, 2 * fewest + 1) if steps % n == 0), fewest)
    return np.array_split(batches, n_chunks)


def train(stepper: Stepper, params: PyTree, split: Any, schedule: Schedule,
          predict: Callable[[PyTree, np.ndarray], Any], *, stop: threading.Event | None = None,
          snapshot: Callable[[PyTree], Any] | None = None) -> Iterator[Progress]:
    """Train `params` with `stepper` on split.x_train, yielding a `Progress` after every chunk.

    split: anything with uint8 x_train/x_val/x_test (n, 28, 28) and labels y_* (n,), e.g.
    `engine.data.Split` (the stepper holds its own copy of the training digits). predict(params,
    x) -> labels (n,) for float images x (n, 28, 28). snapshot(params), if given, is recorded at
    each evaluation (e.g. first-layer weights to draw).

    Stops early, between chunks, when `stop` is set ("stopped") or when the run diverges (see
    `divergence`: a NaN/inf loss or parameter, or a loss blown up far above the first one): the
    last event then carries the parameters from the end of the last good chunk.
    """
    n_train = len(split.x_train)
    if not 1 <= schedule.batch_size <= n_train:
        raise ValueError(f"batch size must be between 1 and {n_train}, got {schedule.batch_size}")
    if schedule.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {schedule.epochs}")
    steps_per_epoch = n_train // schedule.batch_size
    total_steps = steps_per_epoch * schedule.epochs
    eval_interval = max(1, steps_per_epoch // max(1, schedule.evals_per_epoch))
    # Validation and test digits go through `predict` together: one input shape, one compile.
    x_eval = as_float(np.concatenate([split.x_val, split.x_test]))
    n_val = len(split.x_val)

    start = time.perf_counter()
    state = stepper.init(params)
    losses: list[float] = []
    evals: dict[str, list] = {"steps": [], "val": [], "test": []}
    latest_snapshot = None
    step, last_eval = 0, -1

    def evaluate() -> None:
        nonlocal latest_snapshot, last_eval
        correct = np.asarray(predict(params, x_eval)) == np.concatenate([split.y_val,
                                                                          split.y_test])
        evals["steps"].append(step)
        evals["val"].append(float(correct[:n_val].mean()))
        evals["test"].append(float(correct[n_val:].mean()))
        latest_snapshot = snapshot(params) if snapshot else None
        last_eval = step

    def event(status: str = "running", message: str = "") -> Progress:
        elapsed = time.perf_counter() - start
        done = status != "running"
        return Progress(
            step=step, total_steps=total_steps, epoch=step / steps_per_epoch,
            epochs=schedule.epochs, loss=float(np.mean(losses[-chunk_length:])) if losses else
            float("nan"), val_accuracy=evals["val"][-1] if evals["val"] else None,
            test_accuracy=evals["test"][-1] if evals["test"] else None, elapsed=elapsed,
            eta=0.0 if done or not step else elapsed / step * (total_steps - step),
            history=History(tuple(losses), tuple(evals["steps"]), tuple(evals["val"]),
                            tuple(evals["test"])),
            snapshot=latest_snapshot, status=status, message=message,
            params=jax.tree_util.tree_map(np.asarray, params) if done else None)

    chunk_length = 0
    blowup_limit: float | None = None  # set from the very first loss
    for epoch in range(schedule.epochs):
        for batches in epoch_chunks(n_train, schedule, epoch):
            if stop is not None and stop.is_set():
                evaluate()
                yield event("stopped", f"Stopped by you at step {step} of {total_steps}.")
                return
            new_params, new_state, chunk_losses = stepper.run(params, state, batches)
            if blowup_limit is None and len(chunk_losses):
                blowup_limit = schedule.blowup_factor * abs(float(chunk_losses[0]))
            problem = divergence(chunk_losses, len(batches), new_params, blowup_limit)
            if problem:
                good = np.isfinite(chunk_losses) & (chunk_losses <= blowup_limit)
                losses.extend(chunk_losses[: int(np.argmin(good)) if not good.all()
                                           else len(good)].tolist())
                evaluate()
                yield event("diverged", (
                    f"{problem}: the learning rate is probably too high. Training stopped; the "
                    f"model from step {step}, the last good one, is kept."))
                return
            params, state = new_params, new_state
            losses.extend(chunk_losses.tolist())
            chunk_length = len(chunk_losses)
            step += len(batches)
            if step - last_eval >= eval_interval or step % steps_per_epoch == 0:
                evaluate()
            if step < total_steps:
                yield event()
    if last_eval != step:
        evaluate()
    yield event("finished", f"Finished {schedule.epochs} epochs ({total_steps} steps).")
