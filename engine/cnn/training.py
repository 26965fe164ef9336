"""Training the CNN with the shared loop and stepper (`engine.training.loop`): its step rule
(shift augmentation, dropout, cosine decay), run settings, limits, snapshots and health."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import jax
import numpy as np

from engine.app.settings import Limits, parameter_problems, run_length_problems
from engine.cnn.family import CNN
from engine.cnn.layers import conv_output_size
from engine.cnn.model import (
    EVAL_BATCH,
    IMAGE_SIZE,
    CNNSpec,
    Params,
    first_layer_filters,
    forward,
    init_params,
    logits,
    predict_labels,
    predict_proba,
)
from engine.cnn.snapshot import Snapshot
from engine.data.mnist import N_CLASSES
from engine.explain.health import HealthSeries, LayerHealth, layer_health
from engine.explain.health import health_series as series_of_snapshots
from engine.models.model import Model
from engine.nn.layers import JAX_OPS
from engine.nn.losses import loss_function
from engine.nn.optim import OPTIMIZERS
from engine.nn.params import flat_parameters, unflatten
from engine.training import loop


@dataclass(frozen=True)
class TrainingConfig:
    """Everything the page's controls choose for one training run.

    The defaults are the page's: chosen so that a run reaches 97.5% on the test digits quickly
    on a 2-core CPU, compile included (benchmark T2).
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
    loop.check_max_shift(config.max_shift)


def limit_problems(config: TrainingConfig, limits: Limits) -> list[str]:
    """Why this run may not start on this server (empty if it may), one sentence each."""
    problems = []
    if max(config.spec.filters) > limits.max_filters:
        problems.append(f"{max(config.spec.filters)} filters in a block is over this server's "
                        f"limit of {limits.max_filters}.")
    return (problems + parameter_problems(config.spec.param_shapes(), limits)
            + memory_problems(config, limits)
            + run_length_problems(config.epochs, config.batch_size, limits))


def memory_problems(config: TrainingConfig, limits: Limits) -> list[str]:
    """Why this run's activations would not fit max_step_mb (empty if they fit)."""
    needed = step_memory_mb(config.spec, config.batch_size)
    if needed <= limits.max_step_mb:
        return []
    remedies = ["fewer filters", *(["pooling"] if config.spec.pool == "none" else [])]
    if step_memory_mb(config.spec, 1) <= limits.max_step_mb:  # not evaluation alone: the batch
        largest = int(limits.max_step_mb * 2**20 / (8 * activation_floats(config.spec)))
        remedies.insert(0, f"batches of at most {largest}")
    return [f"This network needs about {needed:,.0f} MB of memory for its activations, over "
            f"this server's limit of {limits.max_step_mb} MB: use {' or '.join(remedies)}."]


# ----------------------------------------------------------------------------- the step

def train_logits(params: Params, x: jax.Array, key: jax.Array | None, *, arch: CNNSpec
                 ) -> jax.Array:
    """Class scores (B, 10) of a batch x (B, 28, 28) in training mode (dropout, with `key`)."""
    return logits(params, x, spec=arch, train=True, key=key)


def step_rule(config: TrainingConfig, steps_per_epoch: int) -> loop.StepRule:
    """The hashable rule of one training step: cross-entropy, the shift augmentation, dropout
    and the cosine decay over the whole run, with fresh randomness each step."""
    decay_steps = config.epochs * steps_per_epoch if config.cosine_decay else 0
    return loop.StepRule(train_logits, config.spec, "cross_entropy", config.optimizer,
                             config.learning_rate, config.max_shift, decay_steps, random=True)


def conv_blocks(spec: CNNSpec) -> list[tuple[int, int, int]]:
    """(side of the conv's output map, input channels, filters) of each block, in order."""
    blocks, side, cin = [], IMAGE_SIZE, 1
    for cout, pooled in zip(spec.filters, spec.map_sizes(), strict=True):
        blocks.append((conv_output_size(side, spec.kernel_size, 1, spec.padding), cin, cout))
        side, cin = pooled, cout
    return blocks


def step_flops(spec: CNNSpec, batch_size: int) -> float:
    """About 6 flops per multiply-add per example (forward 2, backward 4), conv and dense."""
    macs = sum(spec.kernel_size ** 2 * cin * cout * side ** 2
               for side, cin, cout in conv_blocks(spec))
    macs += spec.map_sizes()[-1] ** 2 * spec.filters[-1] * N_CLASSES
    return 6.0 * macs * batch_size


def activation_floats(spec: CNNSpec) -> int:
    """Floats one image takes in the forward pass: each block's im2col patches (side² x k²·Cin)
    and conv output (side² x filters); the pooled maps and the head are small beside them."""
    return sum(side ** 2 * (spec.kernel_size ** 2 * cin + cout)
               for side, cin, cout in conv_blocks(spec))


def step_memory_mb(spec: CNNSpec, batch_size: int) -> float:
    """About the memory (MB) of a training step's activations, or of an evaluation batch's
    (EVAL_BATCH images, forward only) when that is more: 8 bytes a float in training (float32
    values kept for the backward pass and their gradients), 4 in evaluation. Checked against
    XLA's own memory analysis in tests/engine/training/test_scale.py."""
    images = max(8 * batch_size, 4 * EVAL_BATCH)  # bytes per activation float
    return images * activation_floats(spec) / 2**20


# ----------------------------------------------------------------------------- a training run

def weight_names(spec: CNNSpec) -> list[str]:
    """The L = blocks + 1 weight arrays' names, input to output: conv0_w, ..., dense_w."""
    return [f"conv{i}_w" for i in range(spec.blocks)] + ["dense_w"]


@partial(jax.jit, static_argnames="spec")
def health_pass(params: Params, x: jax.Array, y: jax.Array, *, spec: CNNSpec
                ) -> tuple[jax.Array, list[jax.Array], list[jax.Array]]:
    """One forward and backward pass on a batch x (B, 28, 28) float, y (B,) int, without
    dropout or shifts: (cross-entropy loss, each block's activations after conv + ReLU as
    (B * H * W, filters), the L weight gradients as `weight_names`). A filter is a column: all
    its positions for every digit of the batch are its rows."""

    def loss_and_activations(params: Params) -> tuple[jax.Array, list[jax.Array]]:
        scores, activations = forward(params, x, spec=spec)
        return loss_function("cross_entropy")(JAX_OPS, scores, y), activations

    (loss, activations), grads = jax.value_and_grad(loss_and_activations, has_aux=True)(params)
    # channels first (F, H, W, B) -> (F, H * W * B) -> one column per filter
    columns = [activation.reshape(activation.shape[0], -1).T for activation in activations]
    return loss, columns, [grads[name] for name in weight_names(spec)]


def measure_health(params: Params, batch: tuple[np.ndarray, np.ndarray], *, spec: CNNSpec
                   ) -> LayerHealth:
    """The layers' health at params on batch (x (B, 28, 28) float, y (B,)): one jitted pass
    (compiled once per architecture and batch size). A conv filter is dead when its ReLU output
    is 0 at every position of every digit; histograms count every position and filter."""
    loss, columns, grads = health_pass(params, batch[0], np.asarray(batch[1], np.int32),
                                       spec=spec)
    return layer_health([np.asarray(c) for c in columns],
                        [np.asarray(params[name]) for name in weight_names(spec)],
                        [np.asarray(g) for g in grads], "relu", float(loss))


def take_snapshot(params: Params, *, spec: CNNSpec, follow: np.ndarray | None,
                  health_batch: tuple[np.ndarray, np.ndarray] | None = None) -> Snapshot:
    """The Snapshot of params; follow: a float (28, 28) image whose prediction to record;
    health_batch: x (B, 28, 28) float, y (B,), the batch to measure the layers' health on."""
    probabilities = None
    if follow is not None:
        probabilities = np.asarray(predict_proba(params, follow[None], spec=spec))[0]
    health = None if health_batch is None else measure_health(params, health_batch, spec=spec)
    return Snapshot(first_layer_filters(params), probabilities, flat_parameters(params), health)


def snapshot_weights(snapshot: Snapshot, spec: CNNSpec) -> list[np.ndarray]:
    """The L weight arrays (`weight_names`) a snapshot's `flat` holds."""
    shapes = {name: np.empty(shape, np.float32) for name, shape in spec.param_shapes().items()}
    params = unflatten(snapshot.flat, shapes)
    return [params[name] for name in weight_names(spec)]


def health_series(steps: Sequence[int], snapshots: Sequence[Snapshot], spec: CNNSpec
                  ) -> HealthSeries | None:
    """The health recorded in a run's snapshots (taken at `steps`), None if none has any."""
    return series_of_snapshots(steps, snapshots, partial(snapshot_weights, spec=spec))


def training_run(config: TrainingConfig, split: Any, *, dataset: str = "unnamed split",
                 params: Params | None = None, stop: Any = None,
                 follow: np.ndarray | None = None, evals_per_epoch: int = 2,
                 health_batch: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> Iterator[loop.Progress[Snapshot]]:
    """Train a CNN per `config` on `split` (see engine.training.loop.train), from `params` if given.

    Each evaluation records a `Snapshot` in the history (first-layer filters, the prediction
    for `follow`, a float (28, 28) image, if given, and with health_batch (x (B, 28, 28) float,
    y (B,)) the layers' health on it, engine.explain.health). An evaluation is a pass over
    1,300 digits, so there are fewer than in the feed-forward room. dataset: the data set's
    name, for the model's metadata. The last event's model is a "cnn" Model.
    """
    check_config(config)
    key = loop.seed_key(config.seed)
    if params is None:
        params = init_params(key, config.spec)
    steps_per_epoch = len(split.x_train) // config.batch_size
    stepper = loop.jax_stepper(step_rule(config, steps_per_epoch), split.x_train,
                                   split.y_train, key)
    schedule = loop.Schedule(
        config.epochs, config.batch_size, config.seed,
        loop.chunk_steps(step_flops(config.spec, config.batch_size), steps_per_epoch,
                             evals_per_epoch=evals_per_epoch),
        evals_per_epoch)
    template = Model(CNN, config.spec, None,
                     {"training": config.to_metadata(), "dataset": dataset})
    return loop.train(stepper, params, split, schedule,
                          partial(predict_labels, spec=config.spec), template=template, stop=stop,
                          snapshot=partial(take_snapshot, spec=config.spec, follow=follow,
                                           health_batch=health_batch))
