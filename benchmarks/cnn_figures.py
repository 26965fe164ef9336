"""R3 (hand-written convolution vs lax.conv_general_dilated, CNN epoch), R4 (the CNN epoch's
useful GFLOP/s as a share of the float32 matmul peak) and T2 (time to 97.5%)."""

from __future__ import annotations

import time
from functools import partial

import jax
import numpy as np

from benchmarks.harness import Figure, median_and_spread, seconds, warm_up
from benchmarks.mlp_figures import BATCH, LR, StepperEpoch, epoch_ratio_figure, workload
from engine import cnn
from engine.data.mnist import embedded_split
from engine.training import loop

# The fixed workload of shared/benchmarks.md: conv 3x3x8 - ReLU - maxpool 2 - conv 3x3x16 -
# ReLU - maxpool 2 - dense 10, "same" padding, float32, batch 64, momentum 0.9, lr 0.1.
SPEC = cnn.CNNSpec(filters=(8, 16), kernel_size=3, pool="max", padding="same")


def ours_logits(params, images, key, *, arch):
    """The benchmark CNN with our im2col convolution (a `engine.training.loop.StepRule` logits)."""
    return cnn.logits(params, images, spec=arch)


def lax_logits(params, images, key, *, arch):
    """The benchmark CNN with lax.conv_general_dilated (in the channels-first layout the model
    computes in)."""
    return cnn.logits(params, images, spec=arch, conv=partial(cnn.lax_conv2d, layout="CHWN"))


def cnn_epoch(logits, x: np.ndarray, y: np.ndarray) -> StepperEpoch:
    """One epoch of the benchmark CNN with these logits, as one jitted lax.scan."""
    rule = loop.StepRule(logits, SPEC, "cross_entropy", "momentum", LR)
    stepper = loop.jax_stepper(rule, x, y, jax.random.key(0))
    return StepperEpoch(stepper, cnn.init_params(jax.random.key(0), SPEC), len(x),
                        chunk_steps=len(x) // BATCH)


def conv_ratio_figure(repeats: int, n_train: int | None = None) -> Figure:
    """R3: our im2col convolution's epoch over the same CNN with lax.conv_general_dilated."""
    x, y = workload(n_train)
    return epoch_ratio_figure("R3", "CNN epoch, our conv / lax.conv", cnn_epoch(ours_logits, x, y),
                              cnn_epoch(lax_logits, x, y), 0.25, repeats)


GEMM_SIZE, GEMM_TRIES = 2048, 3


def gemm_operands() -> np.ndarray:
    """Two square float32 matrices (2, GEMM_SIZE, GEMM_SIZE) for `gemm_flops_per_second`."""
    return np.random.default_rng(0).standard_normal((2, GEMM_SIZE, GEMM_SIZE), np.float32)


def gemm_flops_per_second(a: np.ndarray, b: np.ndarray, tries: int = GEMM_TRIES) -> float:
    """The machine's float32 matmul peak: flops per second of a @ b (square), best of `tries`."""
    return 2.0 * a.shape[0] ** 3 / min(seconds(lambda: a @ b) for _ in range(tries))


def gemm_fraction_figure(repeats: int, n_train: int | None = None) -> Figure:
    """R4: the benchmark CNN epoch's useful flops per second (`cnn.step_flops`: forward and
    backward multiply-adds of conv and dense layers) over the GEMM peak, measured in pairs."""
    x, y = workload(n_train)
    epoch = cnn_epoch(ours_logits, x, y)
    epoch()  # compile
    epoch_flops = cnn.step_flops(SPEC, BATCH) * (len(x) // BATCH)
    a, b = gemm_operands()
    shares, peaks, epoch_times = [], [], []
    for _ in range(repeats):
        peaks.append(gemm_flops_per_second(a, b))
        warm_up(epoch)  # after numpy's threads have stopped spinning (see harness.warm_up)
        epoch_times.append(seconds(epoch))
        shares.append(epoch_flops / epoch_times[-1] / peaks[-1])
    share, spread = median_and_spread(shares)
    context = {"gemm_gflops": float(np.median(peaks)) / 1e9,
               "epoch_gflops": epoch_flops / float(np.median(epoch_times)) / 1e9,
               "epoch_s": float(np.median(epoch_times))}
    return Figure("R4", "CNN epoch GFLOP/s / float32 GEMM peak", share, "of peak", 0.30, spread,
                  context, at_least=True)


def seconds_to_accuracy(config: cnn.TrainingConfig, target: float) -> float:
    """Wall seconds (compile included) until a test evaluation reaches `target`; inf if never."""
    split = embedded_split()
    start = time.perf_counter()
    for event in cnn.training_run(config, split):
        if event.test_accuracy is not None and event.test_accuracy >= target:
            return time.perf_counter() - start
    return float("inf")


def time_to_accuracy_figure(repeats: int, config: cnn.TrainingConfig | None = None,
                            target: float = 0.975) -> Figure:
    """T2: median over `repeats` runs with the page's default settings (fresh compile each)."""
    config = config or cnn.TrainingConfig()
    samples = []
    for _ in range(repeats):
        jax.clear_caches()  # every run pays its compile, as a first press of Train does
        samples.append(seconds_to_accuracy(config, target))
    samples.sort()
    return Figure("T2", f"CNN to {target:.1%} test accuracy", float(np.median(samples)), "s",
                  8.0, (samples[0], samples[-1]))
