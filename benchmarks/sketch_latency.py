"""L1: a drawn canvas to every default model's probabilities (preprocess + predict), warm."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.harness import Figure, median_and_spread
from engine.app.predict import load_default_models, probabilities_of
from engine.data.preprocess import preprocess

CANVAS_SIDE, PEN_WIDTH = 280, 18  # the sketch widget's canvas and pen
SEVEN = [(70, 60), (210, 60), (120, 230)]  # a "7", in canvas pixels
WARM_UP = 3  # runs before timing: compiles and caches are paid by then


def drawn_canvas() -> np.ndarray:
    """A "7" as the canvas returns it: white pen on opaque black, RGBA uint8 (280, 280, 4)."""
    image = Image.new("RGBA", (CANVAS_SIDE, CANVAS_SIDE), (0, 0, 0, 255))
    ImageDraw.Draw(image).line(SEVEN, fill=(255, 255, 255, 255), width=PEN_WIDTH,
                               joint="curve")
    return np.array(image)


def sketch_latency_figure(repeats: int) -> Figure:
    """L1: median milliseconds over `repeats` warm runs of preprocess + every model's predict."""
    models, missing = load_default_models()
    canvas = drawn_canvas()

    def sketch_to_probabilities() -> tuple[float, float]:
        """(preprocess ms, all-models ms) of one run."""
        start = time.perf_counter()
        final = preprocess(canvas).final
        preprocessed = time.perf_counter()
        probabilities_of(models, final)
        return 1e3 * (preprocessed - start), 1e3 * (time.perf_counter() - preprocessed)

    for _ in range(WARM_UP):
        sketch_to_probabilities()
    runs = [sketch_to_probabilities() for _ in range(repeats)]
    median, spread = median_and_spread([pre + predict for pre, predict in runs])
    context: dict[str, float | str] = {
        "models": ", ".join(models),
        "preprocess_ms": float(np.median([pre for pre, _ in runs])),
        "predict_all_ms": float(np.median([predict for _, predict in runs])),
    }
    if missing:
        context["missing_models"] = ", ".join(missing)
    return Figure("L1", "sketch -> probabilities of every model, warm", median, "ms", 30.0,
                  spread, context)
