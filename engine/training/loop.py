"""One training loop for every model: chunks of steps, progress events, stop, divergence guard.

A model family (engine.ffnn, engine.cnn) supplies:

- a `Stepper`, which computes a chunk of optimisation steps on one backend:
  `jax_stepper(rule, x_train, y_train, key)` (`jax.grad`, the whole chunk jitted as one
  `lax.scan`, the uint8 training digits kept on the device; one compiled chunk per `StepRule`,
  kept in a bounded cache) or `numpy_stepper(loss_and_grads, optimizer, x_train, y_train)`
  (a Python loop calling our autodiff engine);
- `predict(params, x) -> labels (n,)` for the accuracies, and optionally `snapshot(params)`,
  what to show of the model at each evaluation;
- a `Model` template (kind, architecture, metadata), which the last event carries with the
  trained parameters filled in.

`train(stepper, params, split, schedule, predict, template=...)` yields a `Progress` event after
every chunk. The caller can chart them, stop the run between chunks by setting `stop`, or just
take the last event, which carries the ready model, the history and why it ended.

    for event in ffnn.training_run(config, split):
        print(event.step, event.loss, event.val_accuracy)
    event.model, event.history, event.status  # the final event
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from engine.data.mnist import N_CLASSES, as_float, epoch_permutation
from engine.models.model import Model, all_finite
from engine.nn.layers import JAX_OPS, random_shift
from engine.nn.losses import loss_function
from engine.nn.optim import Optimizer, make_optimizer
from engine.training.status import RunStatus

PyTree = Any
S = TypeVar("S")  # what a family records of its model at each evaluation (its Snapshot)


class Stepper(Protocol):
    """How optimisation steps are computed on one backend."""

    def init(self, params: PyTree) -> PyTree:
        """The stepper's state for these parameters (at least the optimizer's state)."""

    def run(self, params: PyTree, state: PyTree, batches: np.ndarray) -> tuple[PyTree, PyTree,
                                                                              np.ndarray]:
        """Take len(batches) steps; batches (steps, batch_size) indexes the training set.

        Returns the new parameters, the new state and the losses (steps,), each computed
        before its step's update. A backend may stop early at a non-finite loss and return
        fewer losses.
        """


# ----------------------------------------------------------------------------- the JAX stepper

def seed_key(seed: int) -> jax.Array:
    """`jax.random.key(seed)` for 0 <= seed < 2**32, made without compiling anything.

    jax.random.key compiles its seeding the first time in a process and
    after every jax.clear_caches: a cost every first press of Start paid. ValueError outside
    that range.
    """
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be between 0 and 2**32 - 1, got {seed}")
    return jax.random.wrap_key_data(np.array([0, seed], np.uint32))


@dataclass(frozen=True)
class StepRule:
    """What one JAX training step computes besides the data.

    Hashable (`logits` is a module-level function, compared by identity), so one compiled chunk
    serves every run with the same rule: pressing Train again compiles nothing.
    logits(params, x (B, 28, 28) float, key or None, *, arch) -> (B, 10): the model in training
    mode. loss: a name in engine.nn.losses.LOSSES. random: each step splits a fresh key off the
    state's, for the shift augmentation (max_shift pixels, 0: off) and the model (dropout).
    decay_steps: the step size falls along a half cosine to 0 over this many steps (0: constant).
    """

    logits: Callable[..., jax.Array]
    arch: Hashable
    loss: str
    optimizer: str
    learning_rate: float
    max_shift: int = 0
    decay_steps: int = 0
    random: bool = False


MAX_SHIFT = 8


def check_max_shift(max_shift: int) -> None:
    """ValueError unless 0 <= max_shift <= MAX_SHIFT (pixels of shift augmentation)."""
    if not 0 <= max_shift <= MAX_SHIFT:
        raise ValueError(f"the augmentation shift must be 0 to {MAX_SHIFT} pixels, got "
                         f"{max_shift}")


def cosine_scale(step: jax.Array, total_steps: int) -> jax.Array:
    """Step-size factor at `step` of `total_steps`: 1 at the start, 0 at the end, half a cosine."""
    return 0.5 * (1.0 + jnp.cos(jnp.pi * step / total_steps))


def decayed(params: PyTree, moved: PyTree, step: jax.Array, decay_steps: int) -> PyTree:
    """The optimizer's move from params to moved, scaled by the cosine decay at `step`.

    Every optimizer here moves by learning rate x a direction that does not depend on the
    learning rate, so scaling the move is exactly scaling the learning rate.
    """
    if not decay_steps:
        return moved
    scale = cosine_scale(step, decay_steps)
    return jax.tree_util.tree_map(lambda p, m: p + scale * (m - p), params, moved)


def rule_loss(rule: StepRule, params: PyTree, x: jax.Array, y: jax.Array,
              key: jax.Array | None) -> jax.Array:
    """The scalar training loss of a batch x (B, 28, 28) float, y (B,) int under `rule`."""
    return loss_function(rule.loss)(JAX_OPS, rule.logits(params, x, key, arch=rule.arch), y)


CHUNKS_KEPT = 8


@lru_cache(maxsize=CHUNKS_KEPT)
def compiled_chunk(rule: StepRule) -> Callable[..., tuple[PyTree, PyTree, jax.Array]]:
    """`chunk(params, state, x_all, y_all, batches) -> (params, state, losses)`, jitted.

    One step per row of batches (steps, B), all in one `lax.scan`. x_all: uint8 (n, 28, 28) and
    y_all: int32 (n,) on the device, arguments rather than closed over, so that one compiled
    chunk serves any data. state: {"optimizer", "key", "step"}. At most 8 rules are kept: an
    evicted chunk's programs are freed with it.
    """
    optimizer = make_optimizer(rule.optimizer, rule.learning_rate)
    value_and_grad = jax.value_and_grad(partial(rule_loss, rule))

    def step(x_all, y_all, carry, indices):
        params, state = carry
        key, model_key = state["key"], None
        x = as_float(x_all[indices])
        if rule.random:
            key, shift_key, model_key = jax.random.split(key, 3)
            x = random_shift(shift_key, x, rule.max_shift)
        value, grads = value_and_grad(params, x, y_all[indices], model_key)
        moved, optimizer_state = optimizer.update(params, grads, state["optimizer"])
        params = decayed(params, moved, state["step"], rule.decay_steps)
        state = {"optimizer": optimizer_state, "key": key, "step": state["step"] + 1}
        return (params, state), value

    @jax.jit
    def chunk(params, state, x_all, y_all, batches):
        (params, state), losses = jax.lax.scan(partial(step, x_all, y_all), (params, state),
                                               batches)
        return params, state, losses

    return chunk


@dataclass(frozen=True)
class JaxStepper:
    """Steps by `jax.grad` under a `StepRule`, one jitted `lax.scan` per chunk.

    State: {"optimizer": the optimizer's state, "key": RNG key, "step": int32 scalar}.
    """

    rule: StepRule
    x_train: jax.Array
    y_train: jax.Array
    key: jax.Array

    def init(self, params: PyTree) -> PyTree:
        optimizer = make_optimizer(self.rule.optimizer, self.rule.learning_rate)
        # A numpy zero is sent, not computed: jnp.zeros would compile a program of its own.
        return {"optimizer": optimizer.init(params), "key": self.key,
                "step": np.zeros((), np.int32)}

    def run(self, params: PyTree, state: PyTree, batches: np.ndarray) -> tuple[PyTree, PyTree,
                                                                              np.ndarray]:
        params, state, losses = compiled_chunk(self.rule)(params, state, self.x_train,
                                                          self.y_train, batches)
        return params, state, np.asarray(losses)


def jax_stepper(rule: StepRule, x_train: np.ndarray, y_train: np.ndarray, key: jax.Array
                ) -> JaxStepper:
    """A stepper for `rule`; x_train: uint8 (n, 28, 28), y_train: int (n,), sent to the device
    once; key: the run's RNG key (used when rule.random)."""
    keep_compiled_programs_bounded(rule)
    return JaxStepper(rule, jnp.asarray(x_train), jnp.asarray(np.asarray(y_train, np.int32)), key)


def keep_compiled_programs_bounded(rule: StepRule) -> None:
    """Before a rule that evicts one from the full chunk cache: drop every compiled JAX program.

    Each new architecture leaves its compiled programs behind for good, not only in its chunk
    but in every function jitted with the architecture as a static argument (predictions, the
    twin check), which JAX never evicts: a server grew with every model a visitor tried
    (benchmarks/memory_probe.py measures by how much). Clearing at every new rule would also
    recompile every new model's evaluation; clearing once per CHUNKS_KEPT new rules keeps most
    of the gain. What is still in use recompiles on its next call; the same settings again
    compile nothing while their chunk is kept.
    """
    info = compiled_chunk.cache_info()
    compiled_chunk(rule)
    evicted = info.currsize >= CHUNKS_KEPT and compiled_chunk.cache_info().misses > info.misses
    if evicted:
        jax.clear_caches()


# ----------------------------------------------------------------------------- the numpy stepper

def shifted(images: np.ndarray, offsets: np.ndarray, max_shift: int) -> np.ndarray:
    """Each image (N, H, W) moved by its offset (N, 2) in [0, 2 * max_shift] per axis, as
    `engine.nn.layers.random_shift` moves it for the same offsets (max_shift: no move); pixels
    moved in from outside are 0."""
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    rows = offsets[:, 0, None] + np.arange(h)  # (N, H)
    cols = offsets[:, 1, None] + np.arange(w)  # (N, W)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


@dataclass(frozen=True)
class NumpyStepper:
    """Steps by a function returning numpy gradients (our autodiff engine). See `numpy_stepper`."""

    optimizer: Optimizer
    loss_and_grads: Callable[[PyTree, np.ndarray, np.ndarray], tuple[float, PyTree]]
    x_train: np.ndarray
    y_train: np.ndarray
    max_shift: int = 0
    seed: int = 0

    def init(self, params: PyTree) -> PyTree:
        return {"optimizer": self.optimizer.init(params),
                "rng": np.random.default_rng(self.seed)}

    def batch(self, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The float images (B, 28, 28) of one step, shifted when max_shift > 0."""
        x = as_float(self.x_train[indices])
        if not self.max_shift:
            return x
        return shifted(x, rng.integers(0, 2 * self.max_shift + 1, (len(x), 2)), self.max_shift)

    def run(self, params: PyTree, state: PyTree, batches: np.ndarray) -> tuple[PyTree, PyTree,
                                                                              np.ndarray]:
        losses, optimizer_state = [], state["optimizer"]
        # Overflow to inf/NaN is what the divergence guard looks for, not a reason for warnings.
        with np.errstate(all="ignore"):
            for indices in batches:
                x = self.batch(indices, state["rng"])
                value, grads = self.loss_and_grads(params, x, self.y_train[indices])
                losses.append(value)
                if not np.isfinite(value):
                    break
                params, optimizer_state = self.optimizer.update(params, grads, optimizer_state)
        return params, {**state, "optimizer": optimizer_state}, np.asarray(losses, np.float64)


def numpy_stepper(loss_and_grads: Callable[[PyTree, np.ndarray, np.ndarray], tuple[float, PyTree]],
                  optimizer: Optimizer, x_train: np.ndarray, y_train: np.ndarray, *,
                  max_shift: int = 0, seed: int = 0) -> NumpyStepper:
    """A stepper calling `loss_and_grads(params, x, y) -> (loss, grads)` once per step.

    x_train: uint8 (n, 28, 28), y_train: int (n,); each batch is scaled to [0, 1] float32 and,
    with max_shift, each image moved by up to that many pixels (offsets drawn from `seed`).
    """
    return NumpyStepper(optimizer, loss_and_grads, x_train, np.asarray(y_train), max_shift, seed)


# ----------------------------------------------------------------------------- chunk sizes

# Rough speeds of a training step on a small shared CPU (flop/s), to size chunks.
STEP_THROUGHPUT = {"jax": 10e9, "autodiff": 4e9}
CHUNK_SECONDS = 0.4
MAX_CHUNK_STEPS = 64


def chunk_steps(step_flops: float, steps_per_epoch: int, backend: str = "jax",
                evals_per_epoch: int = 1) -> int:
    """Steps per chunk, for both families.

    Aims at CHUNK_SECONDS of work (so Stop answers within a second), at most MAX_CHUNK_STEPS
    and no longer than the gap between two evaluations (they happen at chunk ends). Takes a
    divisor of the epoch's steps between a third and twice that aim when there is one, so that
    every chunk has one length: a JAX compile costs seconds. step_flops: the work of one step,
    about 6 flops per multiply-add per example.
    """
    target = float(np.clip(CHUNK_SECONDS * STEP_THROUGHPUT[backend] / step_flops, 1,
                           MAX_CHUNK_STEPS))
    longest = min(2 * target, MAX_CHUNK_STEPS, max(1, steps_per_epoch // max(1, evals_per_epoch)))
    divisors = [d for d in range(1, int(longest) + 1)
                if steps_per_epoch % d == 0 and d >= target / 3]
    if divisors:
        return min(divisors, key=lambda d: abs(math.log(d / target)))
    return max(1, min(round(target), int(longest)))


@dataclass(frozen=True)
class Schedule:
    """How long to train, how finely to report, and when the run counts as diverged.

    chunk_steps: at most this many steps run between two events (and two stop checks), see
    `chunk_steps`. evals_per_epoch: how often validation and test accuracy are measured.
    A loss above blowup_factor x the baseline for `patience` steps in a row counts as
    diverged; the baseline is the larger of the median of the last `baseline_window` losses
    and `untrained_loss` (a uniform guess's: ln 10 for cross-entropy), so a trained model
    continued from its tiny loss is judged by the same yardstick as an untrained one.
    """

    epochs: int
    batch_size: int
    seed: int = 0
    chunk_steps: int = 32
    evals_per_epoch: int = 4
    blowup_factor: float = 4.0
    untrained_loss: float = math.log(N_CLASSES)
    patience: int = 3
    baseline_window: int = 100


def epoch_chunks(n_train: int, schedule: Schedule, epoch: int) -> list[np.ndarray]:
    """Epoch `epoch`'s batches of training indices, cut into near-equal chunks of at most
    schedule.chunk_steps steps.

    Each chunk is (steps, batch_size) int32; the last n_train % batch_size digits of the
    shuffled order sit this epoch out (every batch has the same shape).
    """
    steps = n_train // schedule.batch_size
    order = epoch_permutation(n_train, schedule.seed, epoch)[: steps * schedule.batch_size]
    batches = order.reshape(steps, schedule.batch_size).astype(np.int32)
    return np.array_split(batches, -(-steps // schedule.chunk_steps))


# ----------------------------------------------------------------------------- what a run records

@dataclass(frozen=True)
class History(Generic[S]):
    """Everything measured so far: the loss of every step (a diverged run's ends with the one
    that blew up), accuracies at each evaluation (train_accuracy: on TRAIN_PROBE fixed training
    digits, to see overfitting; empty in runs saved before it was measured), and the snapshots
    of the model (at most `snapshot_cap`, thinned out evenly past that), each taken at the
    evaluation of the same index in snapshot_steps."""

    losses: tuple[float, ...] = ()
    eval_steps: tuple[int, ...] = ()
    val_accuracy: tuple[float, ...] = ()
    test_accuracy: tuple[float, ...] = ()
    snapshot_steps: tuple[int, ...] = ()
    snapshots: tuple[S, ...] = ()
    train_accuracy: tuple[float, ...] = ()


MAX_SNAPSHOTS = 64  # a 50-epoch run's every snapshot would hold hundreds of MB
SNAPSHOT_BUDGET_BYTES = 16 * 2**20  # and all of a run's snapshots together at most about this
MIN_SNAPSHOTS = 8  # however big each one is


def snapshot_cap(snapshot: Any) -> int:
    """How many snapshots like this one a run keeps: MAX_SNAPSHOTS, fewer when their arrays
    would pass SNAPSHOT_BUDGET_BYTES (a big net's flattened weights), never under MIN_SNAPSHOTS.
    """
    fields = vars(snapshot).values() if hasattr(snapshot, "__dict__") else ()
    size = sum(np.asarray(value).nbytes for value in fields if isinstance(value, np.ndarray))
    return int(np.clip(SNAPSHOT_BUDGET_BYTES // max(1, size), MIN_SNAPSHOTS, MAX_SNAPSHOTS))


def thinned(steps: tuple[int, ...], snapshots: tuple[S, ...], cap: int = MAX_SNAPSHOTS
            ) -> tuple[tuple[int, ...], tuple[S, ...]]:
    """(steps, snapshots) as given while at most `cap`; past it, every other one and the last."""
    if len(snapshots) <= cap:
        return steps, snapshots
    keep = [*range(0, len(snapshots) - 1, 2), len(snapshots) - 1]
    return tuple(steps[i] for i in keep), tuple(snapshots[i] for i in keep)


@dataclass(frozen=True)
class Progress(Generic[S]):
    """One event of a training run (after a chunk of steps).

    epoch: epochs completed, fractional. loss: mean training loss over the last chunk.
    val_accuracy/test_accuracy: from the latest evaluation (None before the first).
    status: "running" until the last event, then "finished", "stopped" or "diverged"; message
    says why it ended in words a user can act on. model: on the last event only, the trained
    model (numpy params, the last good ones) with metadata "status", "steps" and "metrics".
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
    history: History[S]
    status: RunStatus = RunStatus.RUNNING
    message: str = ""
    model: Model | None = None

    @property
    def done(self) -> bool:
        return self.status != RunStatus.RUNNING

    @property
    def params(self) -> PyTree:
        """The final parameters (numpy) on the last event, None before."""
        return None if self.model is None else self.model.params

    @property
    def snapshot(self) -> S | None:
        """The latest snapshot, None before the first evaluation (or without snapshots)."""
        return self.history.snapshots[-1] if self.history.snapshots else None


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = N_CLASSES
                     ) -> np.ndarray:
    """Counts (n_classes, n_classes) int: row = true label, column = predicted label."""
    pairs = np.asarray(y_true, np.int64) * n_classes + np.asarray(y_pred, np.int64)
    return np.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


# ----------------------------------------------------------------------------- divergence

def loss_baseline(previous: Sequence[float], schedule: Schedule) -> tuple[float, str]:
    """The loss a run is judged against, given its losses so far, and that in words: the median
    of the recent ones, or a blind guess's loss when that is higher (at the start)."""
    recent = previous[-schedule.baseline_window:]
    median = float(np.median(recent)) if len(recent) else 0.0
    if median > schedule.untrained_loss:
        return median, f"the {median:.3g} it had been at"
    return schedule.untrained_loss, f"the {schedule.untrained_loss:.3g} of a blind guess"


class Divergence(NamedTuple):
    """What `divergence` found in a chunk: why it diverged ("" if it did not), how many of its
    losses came before the first bad one (the run keeps the parameters of the last whole chunk
    before it, not these), and how many it saw before it called the run diverged (shown on the
    curve)."""

    problem: str
    kept: int
    seen: int


def divergence(previous: Sequence[float], losses: np.ndarray, n_steps: int, params: PyTree,
               schedule: Schedule) -> Divergence:
    """Whether a chunk of losses (steps,) diverged (see `Divergence`).

    previous: the run's losses before this chunk; params: the parameters after it. Diverged: a
    loss or parameter is NaN/inf, the stepper stopped early (it does so at a non-finite loss),
    or the loss stayed above blowup_factor times `loss_baseline` for schedule.patience steps in
    a row (counting the end of `previous`). The last catches what a numerically stable loss
    hides: a cross-entropy that climbs to 1e4 stays finite, yet the net is lost.
    """
    baseline, words = loss_baseline(previous, schedule)
    limit = schedule.blowup_factor * baseline
    bad = ~np.isfinite(losses) | (losses > limit)
    kept = int(np.argmax(bad)) if bad.any() else len(losses)
    if len(losses) < n_steps or not np.isfinite(losses).all():
        return Divergence("The loss became NaN or infinite", kept, min(kept + 1, len(losses)))
    streak = next((i for i, v in enumerate(reversed(previous)) if not v > limit), len(previous))
    for seen, over in enumerate(bad, start=1):
        streak = streak + 1 if over else 0
        if streak >= schedule.patience:
            return Divergence(f"The loss stayed above {limit:.3g} for {schedule.patience} steps "
                              f"in a row, {schedule.blowup_factor:g} times {words}", kept, seen)
    if not all_finite(params):
        return Divergence("The parameters became NaN or infinite", kept, len(losses))
    return Divergence("", len(losses), len(losses))


# ----------------------------------------------------------------------------- the loop's helpers

@dataclass(frozen=True)
class Clock:
    """When a run started and how long it is."""

    start: float
    steps_per_epoch: int
    total_steps: int
    epochs: int


EVAL_CHUNK = 2_500  # digits predicted at once (full MNIST's 15,000 in 6 chunks of one shape)
TRAIN_PROBE = 300  # training digits evaluated with the others (as many as the embedded
# validation digits: the gap between the two is no surer than the smaller of them)


@dataclass(frozen=True)
class EvalSet:
    """The digits evaluated as one batch x (n, 28, 28) as stored (uint8), labels y (n,),
    predicted EVAL_CHUNK at a time: one input shape, one compile, and only a chunk's float copy
    in memory (all of full MNIST's at once: 47 MB more). The first n_train are training digits
    (evenly spaced, the same all run), the next n_val the validation digits, the rest test."""

    x: np.ndarray
    y: np.ndarray
    n_train: int
    n_val: int

    def accuracies(self, correct: np.ndarray) -> tuple[float, float, float]:
        """(training, validation, test) accuracy from `correct` (n,) bool, one per digit."""
        val_end = self.n_train + self.n_val
        return (float(correct[:self.n_train].mean()), float(correct[self.n_train:val_end].mean()),
                float(correct[val_end:].mean()))


def eval_set(split: Any) -> EvalSet:
    probe = np.linspace(0, len(split.x_train) - 1, min(TRAIN_PROBE, len(split.x_train)))
    probe = probe.astype(np.int64)
    return EvalSet(np.concatenate([split.x_train[probe], split.x_val, split.x_test]),
                   np.concatenate([split.y_train[probe], split.y_val, split.y_test]),
                   len(probe), len(split.x_val))


def chunked_labels(predict: Callable, params: PyTree, images: np.ndarray) -> np.ndarray:
    """predict(params, floats) over images (n, 28, 28), EVAL_CHUNK at a time: labels (n,)."""
    return np.concatenate([np.asarray(predict(params, as_float(images[start:start + EVAL_CHUNK])))
                           for start in range(0, len(images), EVAL_CHUNK)])


def run_clock(schedule: Schedule, n_train: int) -> Clock:
    """The run's Clock, started now; ValueError for a schedule that cannot run on n_train."""
    if not 1 <= schedule.batch_size <= n_train:
        raise ValueError(f"batch size must be between 1 and {n_train}, got {schedule.batch_size}")
    if schedule.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {schedule.epochs}")
    steps_per_epoch = n_train // schedule.batch_size
    return Clock(time.perf_counter(), steps_per_epoch, steps_per_epoch * schedule.epochs,
                 schedule.epochs)


def all_chunks(n_train: int, schedule: Schedule) -> Iterator[np.ndarray]:
    """Every epoch's chunks of batches (see `epoch_chunks`), one after another."""
    for epoch in range(schedule.epochs):
        yield from epoch_chunks(n_train, schedule, epoch)


def evaluated(history: History[S], params: PyTree, step: int, *, predict: Callable, data: EvalSet,
              snapshot: Callable[[PyTree], S] | None) -> History[S]:
    """history with an evaluation of params at `step` added (and its snapshot, if asked)."""
    train, val, test = data.accuracies(chunked_labels(predict, params, data.x) == data.y)
    steps, snapshots = history.snapshot_steps, history.snapshots
    if snapshot is not None:
        taken = snapshot(params)
        steps, snapshots = thinned((*steps, step), (*snapshots, taken), snapshot_cap(taken))
    return replace(history, eval_steps=(*history.eval_steps, step),
                   train_accuracy=(*history.train_accuracy, train),
                   val_accuracy=(*history.val_accuracy, val),
                   test_accuracy=(*history.test_accuracy, test),
                   snapshot_steps=steps, snapshots=snapshots)


def eval_due(history: History, step: int, clock: Clock, evals_per_epoch: int) -> bool:
    """True when `step` ends an epoch or is an evaluation interval past the last evaluation."""
    interval = max(1, clock.steps_per_epoch // max(1, evals_per_epoch))
    last = history.eval_steps[-1] if history.eval_steps else 0
    return step - last >= interval or step % clock.steps_per_epoch == 0


def run_model(template: Model, params: PyTree, step: int, status: str, history: History
              ) -> Model:
    """The template filled in: numpy params and the metadata of how the run ended."""
    metrics = {"test_accuracy": history.test_accuracy[-1], "val_accuracy": history.val_accuracy[-1]}
    return replace(template, params=jax.tree_util.tree_map(np.asarray, params),
                   metadata={**template.metadata, "status": status, "steps": step,
                             "metrics": metrics})


def progress(clock: Clock, step: int, history: History[S], chunk: int,
             status: RunStatus = RunStatus.RUNNING, message: str = "",
             model: Model | None = None) -> Progress[S]:
    """The event after `step` steps; loss: the mean of the last `chunk` losses."""
    elapsed = time.perf_counter() - clock.start
    return Progress(
        step=step, total_steps=clock.total_steps, epoch=step / clock.steps_per_epoch,
        epochs=clock.epochs,
        loss=float(np.mean(history.losses[-chunk:])) if chunk else float("nan"),
        val_accuracy=history.val_accuracy[-1] if history.val_accuracy else None,
        test_accuracy=history.test_accuracy[-1] if history.test_accuracy else None,
        elapsed=elapsed,
        eta=(elapsed / step * (clock.total_steps - step) if step and status == RunStatus.RUNNING
             else 0.0),
        history=history, status=status, message=message, model=model)


def plural(count: int, noun: str) -> str:
    """"1 epoch", "2 epochs"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ----------------------------------------------------------------------------- the loop

def train(stepper: Stepper, params: PyTree, split: Any, schedule: Schedule,
          predict: Callable[[PyTree, np.ndarray], Any], *, template: Model,
          stop: threading.Event | None = None, snapshot: Callable[[PyTree], S] | None = None
          ) -> Iterator[Progress[S]]:
    """Train `params` with `stepper` on split.x_train, yielding a `Progress` after every chunk.

    split: anything with uint8 x_train/x_val/x_test (n, 28, 28) and labels y_* (n,), e.g.
    `engine.data.mnist.Split`. predict(params, x) -> labels (n,) for float images x (n, 28, 28).
    snapshot(params), if given, is recorded in the history at each evaluation. template: the
    Model being trained (kind, architecture, metadata); the last event carries it trained.

    Stops early, between chunks, when `stop` is set ("stopped") or when the run diverges (see
    `divergence`): the last event then carries the parameters from the end of the last good
    chunk.
    """
    clock = run_clock(schedule, len(split.x_train))
    measure = partial(evaluated, predict=predict, data=eval_set(split), snapshot=snapshot)
    history: History[S] = History()
    state, step, chunk = stepper.init(params), 0, 0
    status = RunStatus.FINISHED
    message = (f"Finished {plural(schedule.epochs, 'epoch')} "
               f"({plural(clock.total_steps, 'step')}).")
    for batches in all_chunks(len(split.x_train), schedule):
        if stop is not None and stop.is_set():
            status = RunStatus.STOPPED
            message = f"Stopped by you at step {step} of {clock.total_steps}."
            break
        new_params, new_state, losses = stepper.run(params, state, batches)
        problem, _, seen = divergence(history.losses, losses, len(batches), new_params, schedule)
        # A diverged run's curve goes on to where it was called diverged.
        history = replace(history, losses=(*history.losses, *map(float, losses[:seen])))
        if problem:
            status, message = RunStatus.DIVERGED, (
                f"{problem}: the learning rate is probably too high. Training stopped; the "
                f"model from step {step}, the last good one, is kept.")
            break
        params, state, step, chunk = new_params, new_state, step + len(batches), len(losses)
        if eval_due(history, step, clock, schedule.evals_per_epoch):
            history = measure(history, params, step)
        if step < clock.total_steps:
            yield progress(clock, step, history, chunk)
    if history.eval_steps[-1:] != (step,):
        history = measure(history, params, step)
    yield progress(clock, step, history, chunk, status, message,
                   run_model(template, params, step, status, history))
