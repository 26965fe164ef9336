"""How sure a model sounds: softmax temperature, and inputs no MNIST model was trained for.

A softmax turns any ten scores into ten probabilities that add up to 1, so a model always
"answers", however unlike a digit its input is. Dividing the scores (logits) by a temperature T
before the softmax flattens the probabilities (T > 1) or sharpens them (T < 1) without changing
their order, so the guess stays the same (Guo et al. 2017, "On Calibration of Modern Neural
Networks").
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from engine.data.preprocess import FIELD, preprocess

NOISE_SEED = 14  # the uniform-noise input is the same on every run
CANVAS_SIDE = 280  # px: the sketch lab's canvas, where the letter is drawn
PEN_WIDTH = 18  # px: the sketch lab's pen
SCRIBBLE_INK = 0.35  # the faint scribble's brightest pixel (full ink is 1)
# The scribble's pen path in 28x28 pixels (x, y): a small squiggle off-centre on a blank field.
SCRIBBLE = [(6, 20), (8, 18), (10, 21), (12, 18), (14, 21), (16, 19)]
# The letter "A" on the 280x280 canvas (x, y): two legs and a bar.
LETTER_A = ([(80, 230), (140, 50), (200, 230)], [(105, 160), (175, 160)])


def tempered(values: np.ndarray, temperature: float, *, from_logits: bool = False
             ) -> np.ndarray:
    """softmax(logits / temperature) over the last axis, as float64 of values' shape (..., 10).

    values: a model's probabilities (..., 10) (each row adds up to 1), whose logits are recovered
    up to a constant per row (which the softmax ignores) as their log, zeros clipped to the
    smallest positive float64 first; or, with from_logits, the logits (..., 10) themselves.
    The order of each row is kept, so its most probable digit stays a most probable one.
    Raises ValueError for a temperature that is not a positive finite number.
    """
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"the temperature must be a positive number, not {temperature!r}")
    values = np.asarray(values, dtype=np.float64)
    logits = values if from_logits else np.log(np.clip(values, np.finfo(np.float64).tiny, None))
    scaled = logits / temperature
    scaled = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return scaled / scaled.sum(axis=-1, keepdims=True)


def uniform_noise(seed: int = NOISE_SEED) -> np.ndarray:
    """Every pixel drawn uniformly from [0, 1]: float32 (28, 28)."""
    return np.random.default_rng(seed).uniform(0.0, 1.0, (FIELD, FIELD)).astype(np.float32)


def drawn_letter() -> np.ndarray:
    """An "A" drawn white on the sketch lab's black canvas with its pen, then prepared exactly
    like a drawing (engine.data.preprocess): float32 (28, 28) in [0, 1]."""
    canvas = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 0)
    pen = ImageDraw.Draw(canvas)
    for stroke in LETTER_A:
        pen.line(stroke, fill=255, width=PEN_WIDTH, joint="curve")
    return preprocess(np.asarray(canvas)).final.astype(np.float32)


def faint_scribble() -> np.ndarray:
    """An almost blank field: a short, faint squiggle in one corner, not scaled or centred
    (the preprocessing would blow it up to a full-size digit): float32 (28, 28) in [0, 1]."""
    field = Image.new("L", (FIELD, FIELD), 0)
    ImageDraw.Draw(field).line(SCRIBBLE, fill=round(255 * SCRIBBLE_INK), width=1)
    return (np.asarray(field, dtype=np.float32) / 255).astype(np.float32)


def unfamiliar_inputs() -> dict[str, np.ndarray]:
    """{name: float32 (28, 28) in [0, 1]}: three inputs that are none of the ten digits."""
    return {"uniform noise": uniform_noise(), "the letter A": drawn_letter(),
            "a faint scribble": faint_scribble()}
