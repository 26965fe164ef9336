"""P1: PCA of the 1,000 test digits' activations; P2: what every first-block filter wants."""

from __future__ import annotations

import time

from benchmarks.harness import Figure, median_and_spread, seconds
from engine.app.predict import load_default_model
from engine.data.mnist import embedded_split
from engine.explain import actmax, projector


def pca_figure(repeats: int) -> Figure:
    """P1: PCA to 2-D of the default FFNN's hidden layer (1,000 digits x 256 units), the
    projection included; the activations are computed beforehand (timed as context), and the
    CNN's first block (1,000 x 3,136, the SVD path) as context too."""
    test = embedded_split().x_test
    ffnn, cnn = load_default_model("ffnn-jax"), load_default_model("cnn")
    activations_s = seconds(lambda: projector.activations(ffnn, test, 0))
    cloud = projector.activations(ffnn, test, 0)
    median, spread = median_and_spread(
        [seconds(lambda: projector.pca(cloud, 2).project(cloud)) for _ in range(repeats)])
    wide = projector.activations(cnn, test, 0)
    cnn_block_s = seconds(lambda: projector.pca(wide, 2).project(wide))
    return Figure("P1", f"PCA of 1,000 digits' activations ({cloud.shape[1]} units) to 2-D",
                  median, "s", 0.2, spread,
                  {"activations_s": activations_s, "cnn_block1_3136_units_pca_s": cnn_block_s})


def actmax_figure(repeats: int) -> Figure:
    """P2: activation maximisation (128 steps) of all first-block filters of the default CNN,
    the first call (its compile included, as a learner's first look pays it); warm calls as
    context."""
    cnn = load_default_model("cnn")
    cpu = time.process_time()
    first = seconds(lambda: actmax.what_units_want(cnn, 0))
    cpu = time.process_time() - cpu  # on a shared machine, wall time also counts others' work
    warm, _ = median_and_spread([seconds(lambda: actmax.what_units_want(cnn, 0))
                                 for _ in range(repeats)])
    filters = cnn.architecture.filters[0]
    return Figure("P2", f"What each of the {filters} first-block filters wants, first call",
                  first, "s", 5.0, None, {"first_call_cpu_s": cpu, "warm_median_s": warm})
