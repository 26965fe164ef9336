"""L2, L3: a 21x21 loss-landscape slice of a default model on 1,000 digits, compile included."""

from __future__ import annotations

import jax
import numpy as np

from benchmarks.cnn_figures import gemm_flops_per_second, gemm_operands
from benchmarks.harness import Figure, seconds
from engine import cnn
from engine.app.predict import load_default_model
from engine.data.mnist import as_float, embedded_split
from engine.explain import landscape


def slice_seconds(name: str, n: int, digits: int) -> float:
    """Wall seconds for one n x n filter-normalised slice of default model `name` on `digits`
    test digits, after clearing JAX's caches (a first press of Compute pays the compile)."""
    model = load_default_model(name)
    split = embedded_split()
    x, y = landscape.evaluation_subset(split.x_test, split.y_test, digits)
    jax.clear_caches()

    def one_slice() -> np.ndarray:
        net = model.family.plane_net(model.architecture)
        directions = landscape.random_directions(0, model.params)
        axis = np.linspace(-1, 1, n)
        return np.concatenate(list(landscape.plane_values(
            net, model.params, directions, landscape.grid(axis, axis), as_float(x), y,
            net.points_per_chunk(len(x)))))

    return seconds(one_slice)


def slice_figure(figure_id: str, name: str, target: float, repeats: int, n: int = 21,
                 digits: int = 1000) -> Figure:
    """Median of `repeats` cold slices (each with its compile). For a CNN the context adds the
    work (forward flops of every digit at every point), the float32 GEMM peak measured in the
    same run, and the seconds the work takes at that peak: a floor no convolution reaches."""
    samples = sorted(slice_seconds(name, n, digits) for _ in range(repeats))
    median = float(np.median(samples))
    context = {}
    model = load_default_model(name)
    if model.family is cnn.FAMILY:
        work = cnn.step_flops(model.architecture, digits) / 3 * n * n  # forward: 2 of 6 flops
        peak = gemm_flops_per_second(*gemm_operands())
        context = {"work_gflop": work / 1e9, "gemm_gflops": peak / 1e9,
                   "seconds_at_gemm_peak": work / peak, "achieved_gflops": work / median / 1e9}
    return Figure(figure_id, f"{n}x{n} loss-landscape slice, default {name}, {digits:,} digits",
                  median, "s", target, (samples[0], samples[-1]), context)
