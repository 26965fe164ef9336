"""A drawn or uploaded digit -> the 28x28 float image an MNIST model expects, keeping every stage.

MNIST's own convention (LeCun et al.): the digit's bounding box is scaled so its long side is
20 px (keeping the aspect ratio, with anti-aliasing), pasted into a 28x28 field, and shifted so
its centre of mass sits at the field's centre. Models trained on MNIST only work on digits
prepared the same way, which is why the UI shows every stage.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

FIELD = 28  # MNIST image side
BOX = 20  # MNIST digits' bounding box long side
CENTRE = (14.0, 14.0)  # (row, col) where MNIST puts the centre of mass (mean over the data set)

INK_THRESHOLD = 0.2  # an ink-map value above this counts as ink for the box and the checks
FLAT_CONTRAST = 0.1  # a brightness range below this is one flat colour: nothing drawn on it
MIN_INK_SIDE = 4  # px: a bounding box shorter than this on its long side is a dot
MIN_INK_SPAN = 0.1  # ... and so is one shorter than this fraction of the image's long side
MAX_INK_COVER = 0.6  # more than this fraction of the image as ink is a filled canvas
MAX_BACKGROUND = 0.5  # a background estimate brighter than this is ink, not paper

MAX_IMAGE_PIXELS = 40_000_000  # uploads above this are refused before decoding
MAX_SIDE = 1024  # uploads are shrunk to this long side: plenty for a 20 px result

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow's decompression-bomb guard, made stricter

# A file starting like an image that Pillow cannot identify is a damaged image, not "not an image".
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"RIFF")

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 brightness weights


class PreprocessError(ValueError):
    """A drawing or upload that cannot become a digit; str() is a sentence for the learner."""


class NotAnImageError(PreprocessError):
    def __init__(self) -> None:
        super().__init__("That file is not an image: upload a PNG, JPEG, BMP, GIF or WebP "
                         "picture of a digit.")


class TruncatedImageError(PreprocessError):
    def __init__(self) -> None:
        super().__init__("That image file is damaged or cut short: save it again and re-upload it.")


class ImageTooLargeError(PreprocessError):
    def __init__(self) -> None:
        super().__init__(f"That image is too large (over {MAX_IMAGE_PIXELS // 1_000_000} "
                         "megapixels): crop or shrink it, then upload it again.")


class EmptyDrawingError(PreprocessError):
    def __init__(self) -> None:
        super().__init__("Draw a digit first: the canvas is empty (or the image is blank).")


class TooLittleInkError(PreprocessError):
    def __init__(self) -> None:
        super().__init__("That is too small to read as a digit: draw it larger, across a good "
                         "part of the canvas.")


class FullCanvasError(PreprocessError):
    def __init__(self) -> None:
        super().__init__("The whole canvas is ink: press Clear and draw one digit on the dark "
                         "background (or upload a digit on plain paper).")


@dataclass(frozen=True)
class PreprocessOptions:
    """Which steps run. invert: "auto" flips dark-ink-on-light-paper images, True/False force it."""

    crop: bool = True
    fit: bool = True
    centre: bool = True
    invert: Literal["auto"] | bool = "auto"


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class Preprocessed:
    """Every stage of one digit, float32 in [0, 1], ink bright (1) on black (0).

    ink: (H, W) the input's ink map. cropped: (h, w) its bounding box (the whole map if crop is
    off). fitted: (h', w') the crop scaled to a 20 px long side (or, with fit off, by the factor
    that takes the whole input to 28 px). pasted: (28, 28) fitted centred by its box. final:
    (28, 28) pasted shifted so its centre of mass is at (14, 14): what the models see.
    bbox: (top, left, bottom, right) of the ink in `ink`, bottom/right exclusive.
    centre_of_mass: (row, col) of `pasted`; shift: (rows, cols) applied to get `final`.
    """

    ink: np.ndarray
    cropped: np.ndarray
    fitted: np.ndarray
    pasted: np.ndarray
    final: np.ndarray
    bbox: tuple[int, int, int, int]
    centre_of_mass: tuple[float, float]
    shift: tuple[int, int]
    inverted: bool


# --- uploads ----------------------------------------------------------------------------------


def load_image(data: bytes, *, max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode an uploaded file to RGBA uint8 (H, W, 4), upright (EXIF), long side <= max_side.

    Raises NotAnImageError, TruncatedImageError or ImageTooLargeError (checked from the header,
    before any pixel is decoded).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", (max_side, max_side))  # JPEG: decode straight at a reduced scale
            image = ImageOps.exif_transpose(image)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError() from exc
    except UnidentifiedImageError as exc:
        raise (TruncatedImageError() if data.startswith(IMAGE_SIGNATURES)
               else NotAnImageError()) from exc
    except (OSError, SyntaxError, EOFError, ValueError) as exc:  # Pillow's ways to say "broken"
        raise TruncatedImageError() from exc
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.array(_eight_bit(image).convert("RGBA"))


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit int and float greyscale images stretched to 8-bit "L"; others unchanged."""
    if image.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return image
    values = np.asarray(image, dtype=np.float64)
    low, span = values.min(), np.ptp(values)
    scaled = (values - low) * (255 / span) if span else np.zeros_like(values)
    return Image.fromarray(scaled.astype(np.uint8))


# --- the stages -------------------------------------------------------------------------------


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    """Any (H, W), (H, W, 3) or (H, W, 4) array -> float32 in [0, 1], same shape."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)) \
            or min(image.shape[:2]) == 0:
        raise NotAnImageError()
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1 / 255)
    return np.clip(image, 0, 1).astype(np.float32)


def _border(values: np.ndarray) -> np.ndarray:
    """The outermost pixels of a (H, W) map, as one flat array."""
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def raw_ink(image: np.ndarray, invert: Literal["auto"] | bool) -> tuple[np.ndarray, bool]:
    """(H, W) ink before levelling, and whether brightness was inverted to get it.

    Ink is the alpha channel when the alpha varies (strokes on a transparent canvas), else the
    brightness: white-on-black as is, dark-on-light inverted. "auto" inverts when the border is
    mostly light and the image is not one flat colour (a flat white canvas is all ink).
    """
    pixels = _as_unit_float(image)
    if pixels.ndim == 3 and pixels.shape[2] == 4 and np.ptp(pixels[..., 3]) > 0:
        brightness = pixels[..., 3]
        light_paper = False
    else:
        brightness = pixels if pixels.ndim == 2 else pixels[..., :3] @ LUMA
        light_paper = (np.median(_border(brightness)) > 0.5
                       and np.ptp(brightness) >= FLAT_CONTRAST)
    inverted = bool(light_paper) if invert == "auto" else bool(invert)
    return (1 - brightness if inverted else brightness), inverted


def levelled(raw: np.ndarray) -> np.ndarray:
    """(H, W) raw ink -> ink map in [0, 1]: background (the border's median) to 0, darkest ink
    to 1, so grey paper and faint pencil look like the canvas. Raises on flat or full input."""
    if np.ptp(raw) < FLAT_CONTRAST:
        raise FullCanvasError() if raw.mean() > 0.5 else EmptyDrawingError()
    background = min(float(np.median(_border(raw))), MAX_BACKGROUND)
    top = float(raw.max())
    if top - background < FLAT_CONTRAST:
        raise EmptyDrawingError()
    return np.clip((raw - background) * (1 / (top - background)), 0, 1).astype(np.float32)


def ink_bbox(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the pixels above INK_THRESHOLD, bottom/right exclusive.

    Raises EmptyDrawingError, FullCanvasError, or TooLittleInkError for a dot or a tiny scribble.
    """
    mask = ink > INK_THRESHOLD
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise EmptyDrawingError()
    if mask.mean() > MAX_INK_COVER:
        raise FullCanvasError()
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if max(bottom - top, right - left) < max(MIN_INK_SIDE, MIN_INK_SPAN * max(ink.shape)):
        raise TooLittleInkError()
    return int(top), int(left), int(bottom), int(right)


def resized(image: np.ndarray, scale: float) -> np.ndarray:
    """(h, w) float map scaled by `scale` with Lanczos anti-aliasing, at most 28 px a side."""
    h, w = image.shape
    size = (min(FIELD, max(1, round(w * scale))), min(FIELD, max(1, round(h * scale))))
    if size == (w, h):
        return image
    source = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    out = source.resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(out), 0, 1)  # Lanczos rings slightly outside [0, 1]


def pasted_in_field(image: np.ndarray) -> np.ndarray:
    """(h, w) with h, w <= 28 -> (28, 28) with the image's box in the middle."""
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    h, w = image.shape
    top, left = (FIELD - h) // 2, (FIELD - w) // 2
    field[top:top + h, left:left + w] = image
    return field


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, col) of a (H, W) map's intensity-weighted mean pixel; the middle if it is all 0."""
    total = float(image.sum())
    if total == 0:
        return (image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2
    rows = float(image.sum(axis=1) @ np.arange(image.shape[0])) / total
    cols = float(image.sum(axis=0) @ np.arange(image.shape[1])) / total
    return rows, cols


def shifted(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(H, W) map moved by whole pixels (down/right positive), zeros shifted in, no wrap."""
    h, w = image.shape
    out = np.zeros_like(image)
    out[max(rows, 0):h + min(rows, 0), max(cols, 0):w + min(cols, 0)] = \
        image[max(-rows, 0):h + min(-rows, 0), max(-cols, 0):w + min(-cols, 0)]
    return out


def preprocess(image: np.ndarray, *, options: PreprocessOptions = PreprocessOptions()
               ) -> Preprocessed:
    """A canvas or upload, (H, W[, 3 or 4]) uint8 or float in [0, 1] -> every stage to 28x28.

    Raises a PreprocessError subclass whose message tells the learner what to do.
    """
    raw, inverted = raw_ink(image, options.invert)
    ink = levelled(raw)
    bbox = ink_bbox(ink)
    top, left, bottom, right = bbox
    cropped = ink[top:bottom, left:right] if options.crop else ink
    scale = BOX / max(cropped.shape) if options.fit else FIELD / max(ink.shape)
    fitted = resized(cropped, scale)
    pasted = pasted_in_field(fitted)
    com = centre_of_mass(pasted)
    shift = (round(CENTRE[0] - com[0]), round(CENTRE[1] - com[1])) if options.centre else (0, 0)
    return Preprocessed(ink=ink, cropped=cropped, fitted=fitted, pasted=pasted,
                        final=shifted(pasted, *shift), bbox=bbox, centre_of_mass=com,
                        shift=shift, inverted=inverted)
