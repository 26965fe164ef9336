"""D1: the feed-forward epoch (each backend) and the CNN epoch with layer-health statistics at
their evaluations, over one without; D2: the learning-rate range test's time."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.harness import Figure, median_and_spread, seconds
from benchmarks.mlp_figures import epoch_ratio_figure
from engine import cnn, ffnn
from engine.data.mnist import embedded_split
from engine.explain.health import fixed_batch
from engine.explain.lr_finder import ffnn_range_test
from engine.training.loop import seed_key


def epoch_run(config: ffnn.TrainingConfig, with_health: bool):
    """A function training one epoch of `config` as the page does (twin check at each
    evaluation), with the layers' health measured at each evaluation (on the twin batch, as
    the page measures it) or not."""
    split = embedded_split()
    twin = ffnn.twin_batch(split)
    health = twin if with_health else None

    def one_epoch() -> None:
        for _ in ffnn.training_run(config, split, twin_batch=twin, health_batch=health):
            pass

    return one_epoch


def cnn_epoch_run(with_health: bool):
    """A function training one epoch of the CNN room's defaults as the page does, with the
    layers' health measured at each evaluation on 64 fixed training digits, or not."""
    split = embedded_split()
    config = replace(cnn.TrainingConfig(), epochs=1)
    health = fixed_batch(split) if with_health else None

    def one_epoch() -> None:
        for _ in cnn.training_run(config, split, health_batch=health):
            pass

    return one_epoch


def health_overhead_figures(repeats: int) -> list[Figure]:
    """D1 per FFNN backend and for the CNN: the default settings' epoch time with health on
    over off (compile of both excluded by a first untimed epoch each)."""
    figures = []
    for backend in ffnn.BACKENDS:
        config = replace(ffnn.TrainingConfig(), epochs=1, backend=backend)
        figures.append(epoch_ratio_figure(
            f"D1-{backend}", f"FFNN epoch with layer health / without, {backend}",
            epoch_run(config, True), epoch_run(config, False), 1.15, repeats))
    figures.append(epoch_ratio_figure("D1-cnn", "CNN epoch with layer health / without",
                                      cnn_epoch_run(True), cnn_epoch_run(False), 1.15, repeats))
    return figures


def lr_finder_figure(repeats: int) -> Figure:
    """D2: the learning-rate range test of the default net from fresh weights, 100 steps,
    compile included (each call builds and compiles its pass, as each button press does)."""
    config = ffnn.TrainingConfig()
    split = embedded_split()
    params = ffnn.init_params(seed_key(config.seed), config.arch)
    samples = [seconds(lambda: ffnn_range_test(config, split.x_train, split.y_train, params))
               for _ in range(repeats)]
    median, spread = median_and_spread(samples)
    return Figure("D2", "LR finder on the default FFNN, compile included", median, "s", 3.0,
                  spread)
