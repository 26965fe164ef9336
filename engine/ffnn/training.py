"""Training the feed-forward net with the shared loop (`engine.training.loop`) on either
backend: run settings, limits, the step, snapshots and the twin-engine batch."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import jax
import numpy as np

from engine.app.settings import Limits, parameter_problems, run_length_problems
from engine.data.mnist import as_float
from engine.explain.health import (
    HealthSeries,
    LayerHealth,
    evenly_spaced,
    fixed_batch,
    layer_health,
)
from engine.explain.health import health_series as series_of_snapshots
from engine.ffnn.family import FFNN
from engine.ffnn.model import (
    BACKENDS,
    Architecture,
    Params,
    autodiff_loss_and_grads,
    autodiff_predict_labels,
    first_layer_images,
    init_params,
    layer_differences,
    layer_pass,
    population_statistics,
    predict_labels,
    train_logits,
    trainable,
    uniform_guess_loss,
)
from engine.ffnn.snapshot import Snapshot
from engine.models.model import Model
from engine.nn.layers import JAX_OPS, autodiff_ops
from engine.nn.losses import loss_function
from engine.nn.optim import OPTIMIZERS, make_optimizer
from engine.nn.params import flat_parameters, unflatten
from engine.training import loop


@dataclass(frozen=True)
class TrainingConfig:
    """Everything the page's controls choose for one training run; the page's defaults are
    these (they reach 93% test accuracy within seconds on either backend, benchmark T1).
    max_shift: augmentation, each training image moved by up to this many pixels (0: off).
    train_digits: train on only this many of the split's training digits, evenly spread over
    them (0: all), to watch a net learn a few digits by heart (overfitting).
    """

    arch: Architecture = field(default_factory=Architecture)
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    learning_rate: float = 2e-3
    batch_size: int = 64
    epochs: int = 10
    backend: str = "jax"
    seed: int = 0
    max_shift: int = 0
    train_digits: int = 0

    def to_metadata(self) -> dict[str, Any]:
        meta = asdict(self)
        meta["arch"] = self.arch.to_metadata()
        return meta


def limit_problems(config: TrainingConfig, limits: Limits) -> list[str]:
    """Why this run may not start on this server (empty if it may), one sentence each."""
    problems = []
    if len(config.arch.hidden) > limits.max_hidden_layers:
        problems.append(f"{len(config.arch.hidden)} hidden layers is over this server's limit "
                        f"of {limits.max_hidden_layers}.")
    if config.arch.hidden and max(config.arch.hidden) > limits.max_hidden_units:
        problems.append(f"{max(config.arch.hidden)} units in a layer is over this server's limit "
                        f"of {limits.max_hidden_units}.")
    return (problems + parameter_problems(config.arch.param_shapes(), limits)
            + run_length_problems(config.epochs, config.batch_size, limits))


def check_config(config: TrainingConfig) -> None:
    """Raise ValueError naming the first unknown choice or impossible number."""
    config.arch.check()
    loss_function(config.loss)
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}")
    if config.backend not in BACKENDS:
        raise ValueError(f"unknown backend {config.backend!r}")
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise ValueError(f"the learning rate must be a positive number, got {config.learning_rate}")
    if config.batch_size < 1 or config.epochs < 1:
        raise ValueError("batch size and epochs must be at least 1")
    loop.check_max_shift(config.max_shift)


def step_flops(config: TrainingConfig) -> float:
    """About 6 flops per weight per example (forward 2, backward 4)."""
    sizes = config.arch.layer_sizes
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    return 6.0 * weights * config.batch_size


def make_stepper(config: TrainingConfig, x_train: np.ndarray, y_train: np.ndarray,
                 key: jax.Array) -> loop.Stepper:
    """The stepper of config.backend for this model, loss and optimizer (with batch norm,
    wrapped in a `PreciseStatistics`).

    x_train: uint8 (n, 28, 28), y_train: int (n,); key: the run's RNG key.
    """
    if config.backend == "jax":
        rule = loop.StepRule(train_logits, config.arch, config.loss, config.optimizer,
                                 config.learning_rate, config.max_shift,
                                 random=config.max_shift > 0)
        stepper = loop.jax_stepper(rule, x_train, y_train, key)
    else:
        stepper = loop.numpy_stepper(autodiff_loss_and_grads(config.arch, config.loss),
                                         make_optimizer(config.optimizer, config.learning_rate),
                                         x_train, y_train, max_shift=config.max_shift,
                                         seed=config.seed)
    if not config.arch.batch_norm:
        return stepper
    reference = as_float(x_train[evenly_spaced(len(x_train), PRECISE_BN_DIGITS)])
    return PreciseStatistics(stepper, reference, config.arch, config.backend)


PRECISE_BN_DIGITS = 512  # training digits the batch norms' population statistics are taken on


@dataclass(frozen=True)
class PreciseStatistics:
    """Another stepper's steps on the trained parameters only, then the batch norms' stored
    statistics recomputed at the new parameters ("precise BN", see
    `engine.ffnn.model.population_statistics`): every chunk hands out a model ready to
    evaluate, one image at a time too.

    reference: the fixed training digits (R, 28, 28) float the statistics are taken on, by
    `backend`'s forward pass. The optimizer never sees the statistics: its state is the inner
    stepper's.
    """

    inner: loop.Stepper
    reference: np.ndarray
    arch: Architecture
    backend: str

    def init(self, params: Params) -> Any:
        return self.inner.init(trainable(params))

    def run(self, params: Params, state: Any, batches: np.ndarray) -> tuple[Params, Any,
                                                                            np.ndarray]:
        params, state, losses = self.inner.run(trainable(params), state, batches)
        ops = JAX_OPS if self.backend == "jax" else autodiff_ops()
        stats = population_statistics(params, self.reference, arch=self.arch, ops=ops)
        return {**params, **stats}, state, losses


def health_of_pass(params: Params, layer_pass_result: tuple[float, list, Params], *,
                   arch: Architecture) -> LayerHealth:
    """The layers' health at params (numpy) from a `layer_pass` result (loss, outputs, grads)."""
    value, outputs, grads = layer_pass_result
    layers = range(arch.n_layers)
    return layer_health(outputs[:-1], [params[f"w{i}"] for i in layers],
                        [grads[f"w{i}"] for i in layers], arch.activation, value)


def measure_health(params: Params, batch: tuple[np.ndarray, np.ndarray], *,
                   config: TrainingConfig) -> LayerHealth:
    """The layers' health at params (numpy) on batch (x (B, 28, 28) float, y (B,)): one forward
    and backward pass on config.backend (our engine's tape, or one jitted jax.grad)."""
    result = layer_pass(params, *batch, arch=config.arch, loss_name=config.loss,
                        backend=config.backend)
    return health_of_pass(params, result, arch=config.arch)


def take_snapshot(params: Params, *, config: TrainingConfig,
                  twin_batch: tuple[np.ndarray, np.ndarray] | None,
                  health_batch: tuple[np.ndarray, np.ndarray] | None = None) -> Snapshot:
    """The Snapshot of params (any arrays), with the twin check on twin_batch and the layers'
    health on health_batch, each if given. When both are the same batch, the health is read
    off the twin check's pass on config.backend: it costs no pass of its own."""
    params = {name: np.asarray(value) for name, value in params.items()}
    twin, health, passes = None, None, {}
    if twin_batch is not None:
        passes = {backend: layer_pass(params, *twin_batch, arch=config.arch,
                                      loss_name=config.loss, backend=backend)
                  for backend in BACKENDS}
        twin = layer_differences(passes["autodiff"][2], passes["jax"][2], config.arch)
    if health_batch is not None and health_batch is twin_batch:
        health = health_of_pass(params, passes[config.backend], arch=config.arch)
    elif health_batch is not None:
        health = measure_health(params, health_batch, config=config)
    return Snapshot(first_layer_images(params), twin, flat_parameters(params), health)


def snapshot_weights(snapshot: Snapshot, arch: Architecture) -> list[np.ndarray]:
    """The weight matrices [w0 (784, h0), ..., wL (h_last, 10)] a snapshot's `flat` holds."""
    shapes = {name: np.empty(shape, np.float32) for name, shape in arch.param_shapes().items()}
    params = unflatten(snapshot.flat, shapes)
    return [params[f"w{i}"] for i in range(arch.n_layers)]


def health_series(steps: Sequence[int], snapshots: Sequence[Snapshot], arch: Architecture
                  ) -> HealthSeries | None:
    """The health recorded in a run's snapshots (taken at `steps`), None if none has any."""
    return series_of_snapshots(steps, snapshots, partial(snapshot_weights, arch=arch))


def twin_batch(split: Any, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A fixed batch for the twin-engine check (engine.explain.health.fixed_batch): x (size, 28, 28)
    float32, y (size,)."""
    return fixed_batch(split, size)


def training_run(config: TrainingConfig, split: Any, *, dataset: str = "unnamed split",
                 params: Params | None = None, stop: Any = None, evals_per_epoch: int = 2,
                 twin_batch: tuple[np.ndarray, np.ndarray] | None = None,
                 health_batch: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> Iterator[loop.Progress[Snapshot]]:
    """Train a net per `config` on `split` (see engine.training.loop.train), from `params` if given.

    Each evaluation records a `Snapshot` in the history; with twin_batch (x (batch, 28, 28)
    float, y (batch,)) it includes the twin-engine gradient check on that batch, with
    health_batch (the same shapes) the layers' health (engine.explain.health) on it. dataset: the
    data set's name, for the model's metadata. The last event's model is an "ffnn" Model.
    """
    check_config(config)
    if config.train_digits:
        split = split.with_training_digits(config.train_digits)  # an engine.data.mnist.Split
    key = loop.seed_key(config.seed)
    if params is None:
        params = init_params(key, config.arch)
    predict = autodiff_predict_labels if config.backend == "autodiff" else predict_labels
    steps_per_epoch = len(split.x_train) // config.batch_size
    schedule = loop.Schedule(
        config.epochs, config.batch_size, config.seed,
        loop.chunk_steps(step_flops(config), steps_per_epoch, config.backend,
                             evals_per_epoch),
        evals_per_epoch, untrained_loss=uniform_guess_loss(config.loss))
    template = Model(FFNN, config.arch, None,
                     {"training": config.to_metadata(), "dataset": dataset})
    return loop.train(make_stepper(config, split.x_train, split.y_train, key), params,
                          split, schedule, partial(predict, arch=config.arch), template=template,
                          stop=stop,
                          snapshot=partial(take_snapshot, config=config, twin_batch=twin_batch,
                                           health_batch=health_batch))
