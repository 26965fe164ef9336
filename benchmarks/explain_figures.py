"""X1: every attribution method on all three default models; X2: PGD against the CNN (warm)."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import Figure, median_and_spread
from benchmarks.sketch_latency import drawn_canvas
from engine.app.predict import load_default_models
from engine.data.preprocess import preprocess
from engine.explain import adversarial, attribution

WARM_UP = 2  # runs before timing: the compiles are paid by then


def _median_ms(fn, repeats: int) -> tuple[float, tuple[float, float]]:
    for _ in range(WARM_UP):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - start))
    return median_and_spread(times)


def attribution_figure(repeats: int) -> Figure:
    """X1: IG (32 steps) + SmoothGrad (16) + occlusion (4 px, stride 2), all models, one drawing."""
    models, _ = load_default_models()
    image = preprocess(drawn_canvas()).final
    settings = attribution.Settings(samples=16, steps=32, patch=4, stride=2)

    def explain_all() -> None:
        for model in models.values():
            attribution.explain(model, image, 7, settings)

    median, spread = _median_ms(explain_all, repeats)
    return Figure("X1", "IG 32 + SmoothGrad 16 + occlusion, every model, warm", median, "ms",
                  300.0, spread, {"models": ", ".join(models)})


def pgd_figure(repeats: int) -> Figure:
    """X2: PGD (20 steps) against the default CNN on one drawing; bisection time as context."""
    models, _ = load_default_models()
    cnn, image = models["cnn"], preprocess(drawn_canvas()).final[None]
    label = np.array([7])
    median, spread = _median_ms(lambda: adversarial.attack(cnn, image, label, 0.2), repeats)
    bisection, _ = _median_ms(lambda: [adversarial.smallest_epsilon(m, image[0])
                                       for m in models.values()], max(1, repeats // 10))
    return Figure("X2", "PGD (20 steps) against the CNN, warm", median, "ms", 100.0, spread,
                  {"bisection_three_models_ms": bisection, "bisection_target_ms": 1000.0})
