"""D1: the feed-forward epoch with layer-health statistics at its evaluations, over one without."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.harness import Figure
from benchmarks.mlp_figures import epoch_ratio_figure
from engine import ffnn
from engine.data import embedded_split


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


def health_overhead_figures(repeats: int) -> list[Figure]:
    """D1 per backend: the default settings' epoch time with health on over off (compile of
    both excluded by a first untimed epoch each)."""
    figures = []
    for backend in ffnn.BACKENDS:
        config = replace(ffnn.TrainingConfig(), epochs=1, backend=backend)
        figures.append(epoch_ratio_figure(
            f"D1-{backend}", f"FFNN epoch with layer health / without, {backend}",
            epoch_run(config, True), epoch_run(config, False), 1.15, repeats))
    return figures
