"""The sketch widget (a drawing canvas with an image upload beside it) and the preprocessing row."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

import numpy as np
import streamlit as st

from engine.data.preprocess import (
    MNIST_STROKE,
    EmptyDrawingError,
    FullCanvasError,
    Preprocessed,
    PreprocessError,
    PreprocessOptions,
    TooLittleInkError,
    load_image,
    preprocess,
)
from ui.figures.pictures import enlarged

CANVAS_SIDE = 280  # px: 10x MNIST, big enough to draw on comfortably
PEN_WIDTH = 18  # px: ~2 MNIST pixels once scaled, like MNIST's own strokes
UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]
STAGE_DISPLAY = 140  # px: each preprocessing stage is shown about this wide
MARK = np.array([255, 64, 64], dtype=np.uint8)  # bounding box and centre-of-mass marks
PAD_GREY = 140  # around stages that are not square
CANVAS_HELP = ("Hover over the canvas for its toolbar: undo, redo and reset. Its **Edit** "
               "button moves and deletes strokes instead of drawing: click it again to draw.")
# The engine's messages speak of the canvas; an upload gets advice about pictures instead.
UPLOAD_ADVICE = {
    EmptyDrawingError: "That picture looks blank: no digit stands out from its background. "
                       "Upload a photo of a dark digit on light paper.",
    FullCanvasError: "That picture is one flat colour or all ink: upload a photo of a single "
                     "digit on plain paper.",
    TooLittleInkError: "The digit in that picture is too small or too blotchy to read: crop the "
                       "photo closer to the digit, or write it bigger with a thinner pen.",
}
SWITCHES = {  # option name -> label; each is the toggle {key_prefix}_{name}
    "crop": "Crop to the ink",
    "fit": "Fit into 20×20",
    "strokes": "Even the strokes",
    "centre": "Centre of mass",
}


@dataclass(frozen=True, eq=False)  # an array inside: compare by identity
class Sketch:
    """What the learner gave: rgba (H, W, 4) uint8, from the "canvas" or an "upload"."""

    rgba: np.ndarray
    source: Literal["canvas", "upload"]


def canvas_key(key_prefix: str, clears: int = 0) -> str:
    """The canvas's widget key after `clears` presses of Clear: a new key is a new, empty canvas
    (st_canvas 0.13 cannot be cleared from Python otherwise)."""
    return f"{key_prefix}_canvas_{clears}"


def _use(key_prefix: str, source: str) -> None:
    """Remember which input the learner touched last: "canvas" or "upload"."""
    st.session_state[f"{key_prefix}_source"] = source


def _clear_canvas(key_prefix: str) -> None:
    state = st.session_state
    state.pop(canvas_key(key_prefix, state[f"{key_prefix}_clears"]), None)  # drop the old drawing
    state[f"{key_prefix}_clears"] += 1
    _use(key_prefix, "canvas")


def _on_upload(key_prefix: str) -> None:
    has_file = st.session_state.get(f"{key_prefix}_upload") is not None
    _use(key_prefix, "upload" if has_file else "canvas")


def _decoded_upload(key_prefix: str) -> np.ndarray | None:
    """RGBA (H, W, 4) of the current upload, decoded once per file; None and an st.error if bad."""
    upload = st.session_state.get(f"{key_prefix}_upload")
    if upload is None:
        return None
    cache_key = f"{key_prefix}_decoded"
    cached = st.session_state.get(cache_key)
    if cached is not None and cached[0] == upload.file_id:
        return cached[1]
    try:
        rgba = load_image(upload.getvalue())
    except PreprocessError as exc:
        st.error(f"{upload.name}: {exc}")
        return None
    st.session_state[cache_key] = (upload.file_id, rgba)
    return rgba


def sketch_input(key_prefix: str) -> Sketch | None:
    """Draw the canvas (white pen on black, with a Clear button) and an image upload beside it.

    Returns whichever was used last: the drawing (280, 280, 4) or the decoded upload; None
    before anything is drawn or when the upload cannot be read (the reason is shown with
    st.error). key_prefix keeps several widgets apart (e.g. "sk", "ff").
    """
    # Imported here: the component registers itself on import, which needs a running Streamlit
    # (a server or AppTest), and the rest of this module is usable without one.
    from streamlit_drawable_canvas import st_canvas

    state = st.session_state
    state.setdefault(f"{key_prefix}_clears", 0)  # per prefix, so any page can host a widget
    state.setdefault(f"{key_prefix}_source", "canvas")
    draw_column, upload_column = st.columns(2)
    with draw_column:
        st.markdown("Draw a digit")  # also keeps the canvas's hover toolbar off the text above
        drawing = st_canvas(
            stroke_width=PEN_WIDTH, stroke_color="#FFFFFF", background_color="#000000",
            height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw",
            return_image_data=True, key=canvas_key(key_prefix, state[f"{key_prefix}_clears"]),
            on_change=partial(_use, key_prefix, "canvas"),
        )
        st.button("Clear", key=f"{key_prefix}_clear", icon=":material/ink_eraser:",
                  on_click=_clear_canvas, args=(key_prefix,))
        st.caption(CANVAS_HELP)
    with upload_column:
        st.file_uploader("…or upload a picture of a digit", type=UPLOAD_TYPES,
                         key=f"{key_prefix}_upload", on_change=_on_upload, args=(key_prefix,),
                         help="A photo of a digit on paper works too: dark ink on light paper "
                              "is detected and inverted.")
        if state[f"{key_prefix}_source"] == "upload":
            upload = _decoded_upload(key_prefix)
            if upload is None:
                return None
            st.image(upload, caption="your upload", width=CANVAS_SIDE)
            return Sketch(upload, "upload")
    rgba = drawing.image_data  # decoded from the canvas's PNG on each access: read it once
    return None if rgba is None else Sketch(rgba, "canvas")


def preprocess_or_explain(sketch: Sketch | None, *, options: PreprocessOptions | None = None
                          ) -> Preprocessed | None:
    """Preprocess a sketch_input result; None, with a message fitting its source (canvas or
    upload) that says what to do, if it cannot be. A drawing is always light ink on dark."""
    if sketch is None:
        st.info("Draw a digit on the black canvas, or upload a picture of one.")
        return None
    options = options or PreprocessOptions()
    try:
        return preprocess(sketch.rgba, options=replace(options, invert=False)
                          if sketch.source == "canvas" else options)
    except PreprocessError as exc:
        advice = UPLOAD_ADVICE.get(type(exc), str(exc)) if sketch.source == "upload" else str(exc)
        (st.info if isinstance(exc, EmptyDrawingError) else st.warning)(advice)
    return None


def preprocessing_options(key_prefix: str) -> PreprocessOptions:
    """The options the preprocessing switches ({key_prefix}_crop, ...) stand at.

    Streamlit drops a widget's value after a run that does not draw it (after Clear, or between
    two uploads, when there are no stages to switch), and a switch drawn again then showed its
    default while the stages kept another value. Writing each value back on every run keeps
    it, and keeps the switch showing it.
    """
    state = st.session_state
    for name in SWITCHES:
        key = f"{key_prefix}_{name}"
        state[key] = state.get(key, True)
    return PreprocessOptions(**{name: state[f"{key_prefix}_{name}"] for name in SWITCHES})


def show_preprocessing_switches(key_prefix: str) -> None:
    """One toggle per switchable step, in a row; read them with preprocessing_options."""
    for column, (name, label) in zip(st.columns(len(SWITCHES)), SWITCHES.items(), strict=True):
        column.toggle(label, key=f"{key_prefix}_{name}")


# --- the row of preprocessing stages ---------------------------------------------------------


def _stage_picture(image: np.ndarray) -> tuple[np.ndarray, int]:
    """(h, w) float in [0, 1] -> RGB uint8 about STAGE_DISPLAY px wide, each pixel a crisp
    factor x factor block, and that factor."""
    factor = max(1, STAGE_DISPLAY // max(image.shape))
    return enlarged(image, factor), factor


def _with_box(rgb: np.ndarray, bbox: tuple[int, int, int, int], factor: int) -> np.ndarray:
    """rgb with the (top, left, bottom, right) box of the unscaled image outlined, 2 px thick."""
    out = rgb.copy()
    top, left, bottom, right = (v * factor for v in bbox)
    bottom, right = min(bottom, out.shape[0]), min(right, out.shape[1])
    for rows, cols in ((slice(top, top + 2), slice(left, right)),
                       (slice(bottom - 2, bottom), slice(left, right)),
                       (slice(top, bottom), slice(left, left + 2)),
                       (slice(top, bottom), slice(right - 2, right))):
        out[rows, cols] = MARK
    return out


def _with_dot(rgb: np.ndarray, row: float, col: float, factor: int) -> np.ndarray:
    """rgb with a small square marking the unscaled image's point (row, col)."""
    out = rgb.copy()
    radius = max(2, factor // 2)
    r, c = round((row + 0.5) * factor), round((col + 0.5) * factor)
    out[max(r - radius, 0):r + radius, max(c - radius, 0):c + radius] = MARK
    return out


def _strokes_caption(pre: Preprocessed) -> str:
    """What the stroke step did, in a few words."""
    if pre.restroked:
        return f"strokes redrawn {pre.stroke_width:.1f} → {MNIST_STROKE:.1f} px wide, like MNIST's"
    if pre.stroke_width:
        return f"strokes {pre.stroke_width:.1f} px wide: MNIST-like, kept"
    return "strokes as drawn (step off)"


def stage_images(pre: Preprocessed) -> list[tuple[str, np.ndarray]]:
    """(caption, RGB uint8 image) for each stage, small ones enlarged with crisp pixels.

    A shaded photo's estimated paper lighting comes first; the ink map carries its bounding
    box, the pasted image its centre of mass; the final image is shown unmarked, exactly as
    the models see it.
    """
    top, left, bottom, right = pre.bbox
    row, col = pre.centre_of_mass
    ink, ink_factor = _stage_picture(pre.ink)
    pasted, pasted_factor = _stage_picture(pre.pasted)
    stages = [("the paper's uneven lighting, divided out", _stage_picture(pre.background)[0])] \
        if pre.uneven_lighting else []
    stages += [
        (f"ink{' (dark on light, inverted)' if pre.inverted else ''}, box "
         f"{bottom - top}×{right - left}", _with_box(ink, pre.bbox, ink_factor)),
        (f"cropped {pre.cropped.shape[0]}×{pre.cropped.shape[1]}", _stage_picture(pre.cropped)[0]),
        (f"fitted {pre.fitted.shape[0]}×{pre.fitted.shape[1]}", _stage_picture(pre.fitted)[0]),
        (_strokes_caption(pre), _stage_picture(pre.strokes)[0]),
        (f"pasted in 28×28, centre of mass ({row:.1f}, {col:.1f})",
         _with_dot(pasted, row, col, pasted_factor)),
        (f"shifted by {pre.shift}: what the models see", _stage_picture(pre.final)[0]),
    ]
    return [(f"{number} · {caption}", image)
            for number, (caption, image) in enumerate(stages, start=1)]


def _on_square(rgb: np.ndarray) -> np.ndarray:
    """rgb (h, w, 3) centred on a mid-grey square (unlike black background or white ink), so a
    thin stage (a "1" cropped to 215x18) keeps its aspect ratio but not a caption squeezed to
    its width."""
    height, width = rgb.shape[:2]
    side = max(height, width)
    square = np.full((side, side, 3), PAD_GREY, dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width] = rgb
    return square


def show_preprocessing_stages(pre: Preprocessed) -> None:
    """Draw the stages in one row of small images, left (the ink drawn) to right (the
    model input)."""
    stages = stage_images(pre)
    for column, (caption, image) in zip(st.columns(len(stages)), stages, strict=True):
        column.image(_on_square(image), caption=caption, width=STAGE_DISPLAY)
