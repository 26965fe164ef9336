"""R1, R2 (MLP epoch time against hand-derived numpy) and T1 (FFNN time to 93% test accuracy)."""

from __future__ import annotations

import time

import jax
import numpy as np

from benchmarks import numpy_mlp
from benchmarks.harness import Figure, paired_ratio
from engine import ffnn
from engine.data.mnist import as_float, embedded_split, epoch_permutation
from engine.training import loop

# The fixed workload of shared/benchmarks.md: 784-128-10 ReLU, batch 64, momentum 0.9, lr 0.1,
# on the 4,000 non-test digits of the embedded split.
ARCH = ffnn.Architecture(hidden=(128,), activation="relu")
BATCH, LR, BETA = 64, 0.1, 0.9


def workload(n_train: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 28, 28) and labels (n,): train + validation digits, or the first n."""
    split = embedded_split()
    x = np.concatenate([split.x_train, split.x_val])[:n_train]
    y = np.concatenate([split.y_train, split.y_val])[:n_train]
    return x, y


class NumpyEpoch:
    """One epoch of `numpy_mlp.run_epoch` with a given gradient function; params persist."""

    def __init__(self, gradient_fn, x: np.ndarray, y: np.ndarray) -> None:
        self.gradient_fn = gradient_fn
        self.x, self.y = as_float(x).reshape(len(x), -1), y.astype(np.int64)
        self.params = numpy_mlp.init_params(seed=0)
        self.velocity = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.epoch = 0

    def __call__(self) -> float:
        order = epoch_permutation(len(self.x), seed=0, epoch=self.epoch)
        self.epoch += 1
        return numpy_mlp.run_epoch(self.gradient_fn, self.params, self.velocity, self.x, self.y,
                                   order, BATCH, LR, BETA)


class StepperEpoch:
    """One epoch of an `engine.training.loop` stepper, as the app trains; parameters carry over."""

    def __init__(self, stepper: loop.Stepper, params, n_train: int, chunk_steps: int) -> None:
        self.stepper, self.params = stepper, params
        self.state = stepper.init(params)
        self.schedule = loop.Schedule(epochs=1, batch_size=BATCH, chunk_steps=chunk_steps)
        self.n, self.epoch = n_train, 0

    def __call__(self) -> None:
        for batches in loop.epoch_chunks(self.n, self.schedule, self.epoch):
            self.params, self.state, _ = self.stepper.run(self.params, self.state, batches)
        self.epoch += 1


def jax_mlp_epoch(x: np.ndarray, y: np.ndarray) -> StepperEpoch:
    """The JAX MLP's epoch: jitted lax.scan chunks, sized as the page sizes them."""
    config = ffnn.TrainingConfig(arch=ARCH, optimizer="momentum", learning_rate=LR,
                                 batch_size=BATCH, backend="jax")
    key = jax.random.key(0)
    stepper = ffnn.make_stepper(config, x, y, key)
    steps = loop.chunk_steps(ffnn.step_flops(config), len(x) // BATCH)
    return StepperEpoch(stepper, ffnn.init_params(key, ARCH), len(x), steps)


def epoch_ratio_figure(figure_id: str, title: str, candidate, reference, target: float,
                       repeats: int) -> Figure:
    """Warm both up for one epoch (compile excluded), then pair `repeats` epochs."""
    compile_s = time.perf_counter()
    candidate()
    compile_s = time.perf_counter() - compile_s
    reference()
    ratio, spread, context = paired_ratio(candidate, reference, repeats)
    context["first_epoch_s"] = compile_s
    return Figure(figure_id, title, ratio, "x", target, spread, context)


def autodiff_ratio_figure(repeats: int, n_train: int | None = None) -> Figure:
    """R1: our autodiff engine's epoch over the hand-derived numpy epoch (same loop)."""
    x, y = workload(n_train)
    candidate = NumpyEpoch(ffnn.autodiff_loss_and_grads(ARCH, "cross_entropy"), x, y)
    reference = NumpyEpoch(numpy_mlp.loss_and_grads, x, y)
    return epoch_ratio_figure("R1", "autodiff MLP epoch / numpy hand-derived", candidate,
                              reference, 1.25, repeats)


def jax_ratio_figure(repeats: int, n_train: int | None = None) -> Figure:
    """R2: the JAX MLP's epoch (jitted scan chunks) over the hand-derived numpy epoch."""
    x, y = workload(n_train)
    return epoch_ratio_figure("R2", "JAX MLP epoch / numpy hand-derived", jax_mlp_epoch(x, y),
                              NumpyEpoch(numpy_mlp.loss_and_grads, x, y), 0.7, repeats)


def seconds_to_accuracy(backend: str, target: float, config: ffnn.TrainingConfig) -> float:
    """Wall seconds (compile included) until a test-accuracy evaluation reaches `target`.

    Returns inf if the run ends below it.
    """
    config = ffnn.TrainingConfig(**{**config.__dict__, "backend": backend})
    split = embedded_split()
    # Every run pays its compile, as a first press of Start does.
    loop.compiled_chunk.cache_clear()
    jax.clear_caches()
    start = time.perf_counter()
    # As the page trains: with the twin-engine check at every evaluation.
    for event in ffnn.training_run(config, split, twin_batch=ffnn.twin_batch(split)):
        if event.test_accuracy is not None and event.test_accuracy >= target:
            return time.perf_counter() - start
    return float("inf")


def time_to_accuracy_figures(repeats: int, config: ffnn.TrainingConfig | None = None,
                             target: float = 0.93) -> list[Figure]:
    """T1 for each backend: median over `repeats` runs with the page's default settings."""
    config = config or ffnn.TrainingConfig()
    figures = []
    for backend in ffnn.BACKENDS:
        samples = sorted(seconds_to_accuracy(backend, target, config) for _ in range(repeats))
        median = float(np.median(samples))
        figures.append(Figure(f"T1-{backend}", f"FFNN to {target:.0%} test accuracy, {backend}",
                              median, "s", 2.0, (samples[0], samples[-1])))
    return figures
