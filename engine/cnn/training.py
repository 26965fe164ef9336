"""Training the CNN with the shared loop (`engine.train`): a stepper with per-step randomness
(shift augmentation, dropout) and a cosine-decayed step, run settings, limits and model files."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from engine import checkpoint
from engine import train as training
from engine.cnn.layers import conv_output_size, random_shift
from engine.cnn.model import (
    IMAGE_SIZE,
    N_CLASSES,
    CNNSpec,
    Params,
    first_layer_filters,
    init_params,
    logits,
    predict_labels,
    predict_proba,
)
from engine.data import embedded_dataset
from engine.layers import JAX_OPS
from engine.losses import softmax_cross_entropy
from engine.optim import OPTIMIZERS, Optimizer, make_optimizer
from engine.settings import Limits, run_length_problems

PyTree = Any


@dataclass(frozen=True)
class TrainingConfig:
    """Everything the page's controls choose for one training run.

    The defaults are the page's: chosen so that a run reaches 97.5% on the test digits within
    about 20 s on a 2-core CPU, compile included (benchmark T2).
    max_shift: augmentation, each training image moved by up to this many pixels (0: off).
    cosine_decay: the step size falls from learning_rate to 0 along a half cosine over the run.
    """

    spec: CNNSpec = field(default_factory=CNNSpec)
    optimizer: str = "adam"
    learning_rate: float = 5e-3
    batch_size: int = 64
    epochs: int = 6
    max_shift: int = 2
    cosine_decay: bool = True
    seed: int = 0

    def to_metadata(self) -> dict[str, Any]:
        meta = asdict(self)
        meta["spec"] = self.spec.to_metadata()
        return meta


def check_config(config: TrainingConfig) -> None:
    """Raise ValueError naming the first unknown choice or impossible number."""
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose one of "
                         f"{sorted(OPTIMIZERS)}")
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise ValueError(f"the learning rate must be a positive number, got {config.learning_rate}")
    if config.batch_size < 1 or config.epochs < 1:
        raise ValueError("batch size and epochs must be at least 1")
    if not 0 <= config.max_shift <= 8:
        raise ValueError(f"the augmentation shift must be 0 to 8 pixels, got {config.max_shift}")


def limit_problems(config: TrainingConfig, limits: Limits) -> list[str]:
    """Why this run may not start on this server (empty if it may), one sentence each."""
    problems = []
    if max(config.spec.filters) > limits.max_filters:
        problems.append(f"{max(config.spec.filters)} filters in a block is over this server's "
                        f"limit of {limits.max_filters}.")
    return problems + run_length_problems(config.epochs, config.batch_size, limits)


# ----------------------------------------------------------------------------- the stepper

def cosine_scale(step: jax.Array, total_steps: int) -> jax.Array:
    """Step-size factor at `step` of `total_steps`: 1 at the start, 0 at the end, half a cosine."""
    return 0.5 * (1.0 + jnp.cos(jnp.pi * step / total_steps))


@dataclass(frozen=True)
class CNNStepper:
    """A `engine.train.Stepper` whose state also carries an RNG key and the step count.

    State: {"optimizer": the optimizer's state, "key": RNG key, "step": int32 scalar}.
    """

    optimizer: Optimizer
    chunk: Callable[..., tuple[Params, PyTree, jax.Array]]
    x_train: jax.Array
    y_train: jax.Array
    seed: int

    def init(self, params: Params) -> PyTree:
        return {"optimizer": self.optimizer.init(params), "key": jax.random.key(self.seed),
                "step": jnp.zeros((), jnp.int32)}

    def run(self, params: Params, state: PyTree, batches: np.ndarray
            ) -> tuple[Params, PyTree, np.ndarray]:
        params, state, losses = self.chunk(params, state, self.x_train, self.y_train, batches)
        return params, state, np.asarray(losses)


@dataclass(frozen=True)
class StepRule:
    """What a training step computes, beyond the data: hashable, so one compiled chunk serves
    every run with the same rule (pressing Train again with the same settings compiles
    nothing). decay_steps: the cosine decay's length in steps, 0 for a constant step size."""

    spec: CNNSpec
    optimizer: str
    learning_rate: float
    max_shift: int
    decay_steps: int


def train_loss(params: Params, x: jax.Array, y: jax.Array, key: jax.Array, *, spec: CNNSpec
               ) -> jax.Array:
    """Mean softmax cross-entropy of a batch x (B, 28, 28), y (B,) in training mode."""
    return softmax_cross_entropy(JAX_OPS, logits(params, x, spec=spec, train=True, key=key), y)


@partial(jax.jit, static_argnames="rule")
def train_chunk(params: Params, state: PyTree, x_all: jax.Array, y_all: jax.Array,
                batches: jax.Array, *, rule: StepRule) -> tuple[Params, PyTree, jax.Array]:
    """len(batches) steps in one `lax.scan`. x_all: uint8 (n, 28, 28), y_all: int32 (n,),
    batches: (steps, B) indices. Returns new params, new state, the losses (steps,)."""
    optimizer = make_optimizer(rule.optimizer, rule.learning_rate)
    value_and_grad = jax.value_and_grad(partial(train_loss, spec=rule.spec))

    def step(carry, indices):
        params, state = carry
        key, shift_key, dropout_key = jax.random.split(state["key"], 3)
        x = random_shift(shift_key, x_all[indices].astype(jnp.float32) / 255.0, rule.max_shift)
        value, grads = value_and_grad(params, x, y_all[indices], dropout_key)
        moved, optimizer_state = optimizer.update(params, grads, state["optimizer"])
        scale = cosine_scale(state["step"], rule.decay_steps) if rule.decay_steps else 1.0
        params = jax.tree_util.tree_map(lambda p, m: p + scale * (m - p), params, moved)
        new_state = {"optimizer": optimizer_state, "key": key, "step": state["step"] + 1}
        return (params, new_state), value

    (params, state), losses = jax.lax.scan(step, (params, state), batches)
    return params, state, losses


def make_stepper(config: TrainingConfig, x_train: np.ndarray, y_train: np.ndarray
                 ) -> CNNStepper:
    """The stepper for this config. x_train: uint8 (n, 28, 28), y_train: int (n,).

    Like `engine.train.jax_stepper` (one jitted `lax.scan` per chunk, the uint8 digits on the
    device as arguments), plus fresh randomness each step and the cosine decay. The decay scales
    each step's move: every optimizer here moves by learning rate x a direction that does not
    depend on the learning rate, so scaling the move is exactly scaling the learning rate.
    """
    total_steps = config.epochs * (len(x_train) // config.batch_size)
    rule = StepRule(config.spec, config.optimizer, config.learning_rate, config.max_shift,
                    total_steps if config.cosine_decay else 0)
    return CNNStepper(make_optimizer(config.optimizer, config.learning_rate),
                      partial(train_chunk, rule=rule), jnp.asarray(x_train),
                      jnp.asarray(np.asarray(y_train, np.int32)), config.seed)


# Rough speed of a CNN training step on a small shared CPU, to size chunks (flop/s).
STEP_THROUGHPUT = 10e9
CHUNK_SECONDS = 0.4


def step_flops(config: TrainingConfig) -> float:
    """About 6 flops per multiply-add per example (forward 2, backward 4), conv and dense."""
    spec, side, cin, macs = config.spec, IMAGE_SIZE, 1, 0
    for cout, pooled in zip(spec.filters, spec.map_sizes(), strict=True):
        conv_side = conv_output_size(side, spec.kernel_size, 1, spec.padding)
        macs += spec.kernel_size ** 2 * cin * cout * conv_side ** 2
        side, cin = pooled, cout
    macs += side * side * cin * N_CLASSES
    return 6.0 * macs * config.batch_size


def chunk_steps(config: TrainingConfig, steps_per_epoch: int) -> int:
    """Steps per chunk: about CHUNK_SECONDS of work (Stop answers within a second), and a divisor
    of the epoch's steps when one is near, so that every chunk has one length (one compile:
    a compile costs seconds here)."""
    target = max(1.0, CHUNK_SECONDS * STEP_THROUGHPUT / step_flops(config))
    divisors = [d for d in range(1, steps_per_epoch + 1) if steps_per_epoch % d == 0]
    nearest = min(divisors, key=lambda d: abs(math.log(d / target)))
    return nearest if 0.5 <= nearest / target <= 2.5 else max(1, round(target))


# ----------------------------------------------------------------------------- a training run

@dataclass(frozen=True)
class Snapshot:
    """What the net looked like at one evaluation: first-layer filters (F, k, k) and, when a
    digit to follow was given, its probabilities for that digit (10,)."""

    filters: np.ndarray
    probabilities: np.ndarray | None


def snapshot_recorder(follow: np.ndarray | None, spec: CNNSpec
                      ) -> Callable[[Params], tuple[Snapshot, ...]]:
    """`snapshot(params)` for `engine.train.train` that returns every snapshot so far.

    follow: a float (28, 28) image in [0, 1] whose prediction is recorded, or None. The loop
    calls it once per evaluation, so the i-th snapshot belongs to `history.eval_steps[i]`; the
    whole history rides on each event (a few KB), and a slider can scrub back through it.
    """
    snapshots: list[Snapshot] = []

    def snapshot(params: Params) -> tuple[Snapshot, ...]:
        probabilities = None
        if follow is not None:
            probabilities = np.asarray(predict_proba(params, follow[None], spec=spec))[0]
        snapshots.append(Snapshot(first_layer_filters(params), probabilities))
        return tuple(snapshots)

    return snapshot


def training_run(config: TrainingConfig, split: Any, *, params: Params | None = None,
                 stop: Any = None, follow: np.ndarray | None = None, evals_per_epoch: int = 2
                 ) -> Iterator[training.Progress]:
    """Train a CNN per `config` on `split` (see engine.train.train), from `params` if given.

    Each event's snapshot is the tuple of `Snapshot`s of every evaluation so far (first-layer
    filters, and the prediction for `follow`, a float (28, 28) image, if given). An evaluation
    is a pass over 1,300 digits, so there are fewer than in the feed-forward room.
    """
    check_config(config)
    if params is None:
        params = init_params(jax.random.key(config.seed), config.spec)
    stepper = make_stepper(config, split.x_train, split.y_train)
    steps_per_epoch = len(split.x_train) // config.batch_size
    schedule = training.Schedule(config.epochs, config.batch_size, config.seed,
                                 chunk_steps(config, steps_per_epoch), evals_per_epoch)
    return training.train(stepper, params, split, schedule,
                          partial(predict_labels, spec=config.spec), stop=stop,
                          snapshot=snapshot_recorder(follow, config.spec))


# ----------------------------------------------------------------------------- model files

MODEL_KIND = "cnn"


def checkpoint_bytes(spec: CNNSpec, params: Params, **info: Any) -> bytes:
    """A CNN model file (.npz bytes); see engine.checkpoint.model_bytes."""
    return checkpoint.model_bytes(MODEL_KIND, spec, params, **info)


def read_checkpoint(data: bytes) -> tuple[CNNSpec, dict[str, np.ndarray], dict[str, Any]]:
    """(architecture, params, metadata) from a CNN model file's bytes; raises
    checkpoint.CheckpointError when it is not a valid one."""
    return checkpoint.read_model(data, MODEL_KIND, CNNSpec.from_metadata)


# ----------------------------------------------------------------------------- the default model

# The page's default settings, trained longer (the cosine decay stretches over the longer run).
PRETRAIN_CONFIG = TrainingConfig(epochs=15, seed=0)


def default_model_bytes() -> bytes:
    """The default CNN (assets/models/cnn.npz) as a model file: PRETRAIN_CONFIG on the embedded
    training digits only, so the test digits stay unseen. Seeded: the same code gives the same
    model."""
    dataset = embedded_dataset()
    final = list(training_run(PRETRAIN_CONFIG, dataset.split, evals_per_epoch=1))[-1]
    if final.status != "finished":
        raise RuntimeError(f"pretraining the CNN did not finish: {final.message}")
    return checkpoint_bytes(
        PRETRAIN_CONFIG.spec, final.params, dataset=dataset.name,
        trained_on="embedded train split", training=PRETRAIN_CONFIG.to_metadata(),
        metrics={"test_accuracy": final.test_accuracy, "val_accuracy": final.val_accuracy})
