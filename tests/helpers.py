"""Shared test helpers: synthetic canvases and uploads, the canvas value AppTest can inject, a
fresh app session on a page, and a clock that moves only when told.

Import from any test file as `from helpers import ...` (pytest puts tests/ on sys.path); the
fixtures built on them (`clock`, `runs_dir`) are in conftest.py.
Canvases are what the sketch widget returns: RGBA uint8 (side, side, 4), white ink on an opaque
black background, like `st_canvas(..., background_color="#000000")` with a white pen.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from engine.data.mnist import embedded_split, load_embedded
from engine.models.family import Family
from engine.models.model import Model

ROOT = Path(__file__).resolve().parents[1]
APP_TIMEOUT = 120  # s per script run: JAX compiles on first use; a hang fails instead of blocking
CANVAS_SIDE = 280  # the sketch widget's canvas, in pixels
PEN_WIDTH = 18  # the sketch widget's pen


def blank_canvas(side: int = CANVAS_SIDE) -> np.ndarray:
    """An empty canvas: opaque black RGBA (side, side, 4) uint8."""
    canvas = np.zeros((side, side, 4), dtype=np.uint8)
    canvas[..., 3] = 255
    return canvas


def draw_stroke(points: Sequence[tuple[float, float]], *, width: int = PEN_WIDTH,
                canvas: np.ndarray | None = None) -> np.ndarray:
    """A white polyline through (x, y) points with round ends, on a copy of canvas (or a blank one).

    One point draws a single dot of the pen's width.
    """
    image = Image.fromarray(blank_canvas() if canvas is None else canvas.copy())
    pen = ImageDraw.Draw(image)
    pen.line([tuple(p) for p in points], fill=(255, 255, 255, 255), width=width, joint="curve")
    radius = width / 2
    for x, y in (points[0], points[-1]):  # round caps, as a real pen leaves
        pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(255, 255, 255, 255))
    return np.array(image)


def vertical_one(side: int = CANVAS_SIDE) -> np.ndarray:
    """A "1": one vertical stroke down the middle of a canvas, 60% of its height."""
    return draw_stroke([(side / 2, side * 0.2), (side / 2, side * 0.8)],
                       canvas=blank_canvas(side))


@cache
def mnist_digit(label: int = 3, index: int = 0) -> np.ndarray:
    """A real digit from the embedded set: the index-th image of class `label`, uint8 (28, 28)."""
    images, labels = load_embedded()
    return images[np.flatnonzero(labels == label)[index]]


def mnist_on_canvas(digit: np.ndarray, *, top: int = 40, left: int = 40, size: int = 200,
                    side: int = CANVAS_SIDE) -> np.ndarray:
    """An MNIST digit (28, 28) uint8, its ink box scaled to `size` px on its long side, drawn
    white at (top, left) on a black canvas: RGBA (side, side, 4) uint8."""
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    box = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = size / max(box.shape)
    h, w = max(1, round(box.shape[0] * scale)), max(1, round(box.shape[1] * scale))
    big = np.asarray(Image.fromarray(box).resize((w, h), Image.Resampling.BILINEAR))
    canvas = blank_canvas(side)
    canvas[top:top + h, left:left + w, :3] = big[..., None]
    return canvas


def on_paper(canvas: np.ndarray, *, paper: int = 235, ink: int = 25) -> np.ndarray:
    """A white-on-black canvas redrawn as dark ink on light paper, RGBA uint8 same shape."""
    amount = canvas[..., :3].astype(np.float32) / 255
    rgb = paper + (ink - paper) * amount
    return np.concatenate([rgb.round().astype(np.uint8), canvas[..., 3:]], axis=-1)


def image_bytes(rgba: np.ndarray, format: str = "PNG", **save_options) -> bytes:
    """An RGBA (or RGB, or grey) array encoded as an image file, as a browser would upload it."""
    image = Image.fromarray(rgba)
    if format == "JPEG":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=format, **save_options)
    return buffer.getvalue()


def mnist_test_digits(label: int | None = None) -> np.ndarray:
    """The embedded set's held-out test digits (n, 28, 28) uint8, of one class or all."""
    split = embedded_split()
    return split.x_test if label is None else split.x_test[split.y_test == label]


def shaded_photo(digit: np.ndarray, seed: int = 0) -> tuple[bytes, tuple[int, int, int, int]]:
    """An MNIST digit (28, 28) as a phone snap of dark ink on grey paper, lit from the left (a
    strong falloff and a vignette), with sensor noise: (480x360 JPEG bytes, the ink's box)."""
    big = np.asarray(Image.fromarray(digit).resize((240, 240), Image.Resampling.BICUBIC),
                     np.float32) / 255
    ink = np.zeros((360, 480), np.float32)
    ink[60:300, 120:360] = np.clip(big, 0, 1)
    reflectance = 0.62 + (0.08 - 0.62) * ink  # grey paper, nearly black ink
    y, x = np.mgrid[0:360, 0:480] / np.array([360, 480])[:, None, None]
    light = (1.25 - 0.85 * x) * (1 - 0.7 * ((y - 0.5) ** 2 + (x - 0.5) ** 2))
    noise = np.random.default_rng(seed).normal(0, 0.04, ink.shape)
    grey = np.clip(reflectance * light + noise, 0, 1)
    rgb = (np.stack([grey, 0.97 * grey, 0.9 * grey], -1) * 255).round().astype(np.uint8)
    rows, cols = np.flatnonzero((ink > 0.5).any(1)), np.flatnonzero((ink > 0.5).any(0))
    return image_bytes(rgb, "JPEG", quality=85), (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)


def canvas_state(rgba: np.ndarray) -> dict:
    """The session_state value that makes an `st_canvas` (0.13) return `rgba` as its image_data.

    In AppTest: `at.session_state[canvas_key] = canvas_state(rgba)`, then `at.run()`. This is the
    component's internal format (see /work/shared/testing.md); keep it here, in one place.
    """
    data_url = "data:image/png;base64," + base64.b64encode(image_bytes(rgba)).decode("ascii")
    return {"drawing": {"raw": {"version": "7", "objects": []}, "data": data_url},
            "backgroundFit": None}


TAB_KEYS = {"pages/feedforward.py": "ff_tab", "pages/cnn.py": "cnn_tab",
            "pages/sketch.py": "sk_tab"}  # the session key of each page's tabs (ui.lazy)


def open_page(page: str, *, tab: str | None = None, timeout: float = APP_TIMEOUT,
              **query: str) -> AppTest:
    """A fresh session (as after a reload) on `page` ("pages/cnn.py"), with URL query
    parameters `query`, rendered through the router without an exception; on its tab labelled
    `tab` when given (only the open tab is drawn)."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=timeout)
    at.query_params.update(query)
    at.run()
    at.switch_page(page)
    if tab is not None:
        at.session_state[TAB_KEYS[page]] = tab
    at.run()
    assert_calm(at)
    return at


def open_tab(at: AppTest, page: str, label: str) -> AppTest:
    """Click the tab labelled `label` of `page` (the learner's click sets the tabs' key, and
    the page reruns drawing that tab)."""
    at.session_state[TAB_KEYS[page]] = label
    at.run()
    assert_calm(at)
    return at


def assert_calm(at: AppTest) -> None:
    """The last script run raised nothing."""
    assert not at.exception, [e.value for e in at.exception]


def said(at: AppTest) -> str:
    """Everything the page said in boxes: errors, warnings and notes, joined by " | "."""
    return " | ".join(str(e.value) for e in [*at.error, *at.warning, *at.info])


class FakeClock:
    """A monotonic clock (seconds) that moves only when a test sets `now`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def room_run(at: AppTest, room_key: str):
    """The run of a training room ("ff_room", "cnn_room") in the session, None before one."""
    try:
        return at.session_state[room_key].run
    except KeyError:
        return None


def run_until_done(at: AppTest, room_key: str, bound: int = 300) -> list[str]:
    """Drive a room's live fragment (one pass per .run()) until its run ends, then rerun once
    (the page after the run); the progress texts seen on the way."""
    texts: list[str] = []
    pause = threading.Event()
    for _ in range(bound):
        at.run()
        texts += [p.proto.text for p in at.get("progress")]
        if not room_run(at, room_key).view().active:
            at.run()
            return texts + [p.proto.text for p in at.get("progress")]
        pause.wait(0.1)
    raise AssertionError(f"the run did not end within {bound} refreshes")


def messages(elements) -> str:
    """The texts of these elements (markdown, errors, ...), joined."""
    return " ".join(str(e.value) for e in elements)


def leave_no_run(at: AppTest, room_key: str) -> None:
    """Stop the room's run, if any, and wait for its thread: no test leaves one behind."""
    run = room_run(at, room_key)
    if run is not None:
        run.stop()
        assert run.wait(30)


def on_device(family: Family, architecture: Any, params: Any,
              metadata: Mapping[str, Any] | None = None) -> Model:
    """A Model of `family` with its parameters on the JAX device, as the app predicts with."""
    return Model(family, architecture, params, dict(metadata or {})).on_device()
