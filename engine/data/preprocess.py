"""A drawn or uploaded digit -> the 28x28 float image an MNIST model expects, keeping every stage.

MNIST's own convention (LeCun et al.): the digit's bounding box is scaled so its long side is
20 px (keeping the aspect ratio, with anti-aliasing), pasted into a 28x28 field, and shifted so
its centre of mass sits at the field's centre. Models trained on MNIST only work on digits
prepared the same way, which is why the UI shows every stage.

The steps on the whole canvas (280x280 or a 1024 px upload) work in place where they can: the
server has glibc map every block over 128 kB afresh (engine.app.tuning), so each temporary array of
that size costs new pages, and they were half of a drawing's preprocessing time.
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
MIN_INK_SPAN = 0.15  # ... and so is one shorter than this fraction of the image's long side
MAX_INK_COVER = 0.6  # more than this fraction of the image as ink is a filled canvas
BACKGROUND_GRID = 64  # px: the background is fitted on a copy at most this big a side
BACKGROUND_ROUNDS = 4  # fits, each to the pixels the last one called background
BACKGROUND_SIGMAS = 2.5  # a pixel this many deviations off the fit is ink, not background
NOISE_SIGMAS = 4.0  # ink must stand this many noise deviations above the paper
SIGMA_SAMPLE = 8192  # noise is estimated from about this many evenly spread pixels
INK_TOP_PERCENTILE = 95  # of the ink pixels: this one and darker become full ink (1)
MNIST_STROKE = 2.8  # px at 28x28: the median stroke width (`stroke_width`) of MNIST's digits
STROKE_RANGE = (1.2, 4.5)  # px: strokes this wide (MNIST's 1st to 99th percentile) stay as drawn
STROKE_WORK = 80  # px: strokes are measured on the crop resampled to this long side
STROKE_SUPERSAMPLE = 4  # ... and redrawn at this many times their final size, then averaged
MIN_STROKE_LENGTHS = 1.2  # centre lines shorter than this many stroke widths: a blob
UNEVEN_LIGHTING = 0.05  # a background whose brightness varies more than this was shaded

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
    """Which steps run. invert: "auto" reads dark-ink-on-light-paper images as such (ink is what
    stands out from the background, darker or lighter), True/False force it."""

    crop: bool = True
    fit: bool = True
    strokes: bool = True
    centre: bool = True
    invert: Literal["auto"] | bool = "auto"


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class Preprocessed:
    """Every stage of one digit, float32 in [0, 1], ink bright (1) on black (0).

    background: (H, W) the estimated brightness under the ink (paper and its lighting), divided
    out to get ink: (H, W) the input's ink map. cropped: (h, w) its bounding box (the whole map
    if crop is off). fitted: (h', w') the crop scaled to a 20 px long side (or, with fit off, by
    the factor that takes the whole input to 28 px). strokes: (h', w') fitted redrawn with
    MNIST's pen when its strokes were not MNIST-like, else fitted itself. pasted: (28, 28)
    strokes centred by its box. final: (28, 28) pasted shifted so its centre of mass is at
    (14, 14): what the models see. bbox: (top, left, bottom, right) of the ink in `ink`,
    bottom/right exclusive. centre_of_mass: (row, col) of `pasted`; shift: (rows, cols) applied
    to get `final`. stroke_width: px, in `fitted` (0 when the strokes step is off).
    """

    background: np.ndarray
    ink: np.ndarray
    cropped: np.ndarray
    fitted: np.ndarray
    strokes: np.ndarray
    pasted: np.ndarray
    final: np.ndarray
    bbox: tuple[int, int, int, int]
    centre_of_mass: tuple[float, float]
    shift: tuple[int, int]
    inverted: bool
    stroke_width: float

    @property
    def restroked(self) -> bool:
        """Whether the strokes were redrawn with MNIST's pen."""
        return self.strokes is not self.fitted

    @property
    def uneven_lighting(self) -> bool:
        """Whether the background's brightness varied enough to call it shaded."""
        return float(np.ptp(self.background)) > UNEVEN_LIGHTING


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
        pixels = image.astype(np.float32)
        pixels *= np.float32(1 / 255)  # in place (see the module's note)
        return pixels
    return np.clip(image, 0, 1).astype(np.float32)


def _brightness(image: np.ndarray) -> np.ndarray:
    """(H, W) brightness in [0, 1]: the alpha channel when it varies (strokes on a transparent
    canvas), else the luma of the colours."""
    pixels = _as_unit_float(image)
    if pixels.ndim == 3 and pixels.shape[2] == 4 and np.ptp(pixels[..., 3]) > 0:
        return pixels[..., 3]
    return pixels if pixels.ndim == 2 else pixels[..., :3] @ LUMA


def _robust_sigma(values: np.ndarray) -> float:
    """The standard deviation of values' bulk, from the median absolute deviation of (at most
    about SIGMA_SAMPLE of) them."""
    values = values.ravel()[::max(1, values.size // SIGMA_SAMPLE)]
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _quadratic_terms(y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    """The terms 1, y, x, y², xy, x² of coordinates y, x in [-1, 1], each only as big as it
    needs: rows (h, 1) and columns (1, w) make one (h, w) term, xy (broadcast them for more)."""
    return [np.ones((1, 1)), y, x, y * y, x * y, x * x]


def _unit_axes(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row (h, 1) and column (1, w) coordinates of a grid's pixel centres, each in [-1, 1]."""
    return np.linspace(-1, 1, h)[:, None], np.linspace(-1, 1, w)[None, :]


def background_surface(values: np.ndarray) -> np.ndarray:
    """(H, W) smooth estimate of what lies under the ink of a (H, W) map: paper and its lighting.

    A quadratic surface (it follows a lighting gradient or a vignette, never a stroke), fitted by
    least squares to a copy at most BACKGROUND_GRID px a side, each round only to the pixels
    within BACKGROUND_SIGMAS robust standard deviations of the last fit (the first: the median),
    so the ink, the minority on either side, drops out of the fit.
    """
    h, w = values.shape
    factor = min(1.0, BACKGROUND_GRID / max(h, w))
    small_h, small_w = max(1, round(h * factor)), max(1, round(w * factor))
    small = np.asarray(Image.fromarray(np.asarray(values, dtype=np.float32)).resize(
        (small_w, small_h), Image.Resampling.BOX), dtype=np.float64).ravel()
    grid = _quadratic_terms(*_unit_axes(small_h, small_w))
    terms = np.stack([np.broadcast_to(t, (small_h, small_w)).ravel() for t in grid], axis=1)
    residual = small - np.median(small)  # the first guess: flat paper at the median
    keep = np.ones(small.size, dtype=bool)
    for _ in range(BACKGROUND_ROUNDS):
        keep = np.abs(residual) <= BACKGROUND_SIGMAS * _robust_sigma(residual[keep]) + 1e-6
        kept = terms[keep]  # least squares by its 6x6 normal equations (lstsq: even if singular)
        coefficients = np.linalg.lstsq(kept.T @ kept, kept.T @ small[keep], rcond=None)[0]
        residual = small - terms @ coefficients
    surface = np.zeros((h, w))
    for c, t in zip(coefficients, _quadratic_terms(*_unit_axes(h, w)), strict=True):
        surface += c * t  # in place, one term at a time: few (h, w) arrays
    return np.clip(surface, 0, 1, out=surface).astype(np.float32)


def _ink_is_dark(brightness: np.ndarray, background: np.ndarray) -> bool:
    """Whether the pixels that stand out from the background are mostly darker than it."""
    residual = brightness - background
    noise = NOISE_SIGMAS * _robust_sigma(residual)
    darker = np.clip(-residual - noise, 0, None).sum()
    return bool(darker > np.clip(residual - noise, 0, None).sum())


def ink_map(image: np.ndarray, invert: Literal["auto"] | bool
            ) -> tuple[np.ndarray, np.ndarray, bool]:
    """(ink (H, W) in [0, 1], background brightness (H, W), whether the ink is dark on light).

    The background (paper and its uneven lighting, or the canvas) is estimated and divided out:
    ink is the fraction of the way from the background's brightness to black (dark ink on
    paper) or to white (light ink); paper noise is cut below NOISE_SIGMAS deviations, and the
    strongest ink is scaled to 1. "auto" picks dark ink when what stands out is mostly darker.
    Raises EmptyDrawingError or FullCanvasError on flat input or a background that is ink.
    """
    brightness = _brightness(image)
    if np.ptp(brightness) < FLAT_CONTRAST:
        raise FullCanvasError() if brightness.mean() > 0.5 else EmptyDrawingError()
    background = background_surface(brightness)
    dark = _ink_is_dark(brightness, background) if invert == "auto" else bool(invert)
    raw, under = (1 - brightness, 1 - background) if dark else (brightness, background)
    if 1 - float(np.median(under)) < FLAT_CONTRAST:
        raise FullCanvasError()  # what lies under everything is already ink-coloured
    flat = raw - under  # the residual, then the ink map, computed in place
    flat -= NOISE_SIGMAS * _robust_sigma(flat)  # above the noise, before dividing: dim
    flat /= np.maximum(1 - under, FLAT_CONTRAST)  # paper is noisier
    np.clip(flat, 0, 1, out=flat)
    top = float(np.percentile(flat[flat > 0], INK_TOP_PERCENTILE)) if flat.any() else 0.0
    if top < FLAT_CONTRAST:
        raise EmptyDrawingError()
    flat *= 1 / top
    return np.clip(flat, 0, 1, out=flat), background, dark


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


def _resampled(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float map resampled to size (rows, cols) with Lanczos anti-aliasing, in [0, 1]."""
    if image.shape == size:
        return image
    source = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    out = source.resize(size[::-1], Image.Resampling.LANCZOS)
    return np.clip(np.asarray(out), 0, 1)  # Lanczos rings slightly outside [0, 1]


def resized(image: np.ndarray, scale: float) -> np.ndarray:
    """(h, w) float map scaled by `scale` with Lanczos anti-aliasing, at most 28 px a side."""
    h, w = image.shape
    return _resampled(image, (min(FIELD, max(1, round(h * scale))),
                              min(FIELD, max(1, round(w * scale)))))


def _neighbours(mask: np.ndarray) -> list[np.ndarray]:
    """The 8 neighbours of every pixel of a (H, W) mask, clockwise from the one above, as
    (H, W) masks (outside the image counts as empty)."""
    p = np.pad(mask, 1)
    h, w = mask.shape
    offsets = [(0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0)]
    return [p[r:r + h, c:c + w] for r, c in offsets]


def skeleton(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the centre lines of a (H, W) mask's strokes, one pixel wide, same topology.

    Zhang & Suen's thinning (CACM 1984): two alternating passes each peel the boundary pixels
    whose removal keeps the shape connected and its line ends in place, until none changes.
    """
    thin = mask.astype(bool)
    while True:
        changed = False
        for first_pass in (True, False):
            n = _neighbours(thin)  # n[0] above (P2), then clockwise to n[7] above-left (P9)
            count = sum(m.astype(np.int8) for m in n)
            crossings = sum((~n[i] & n[(i + 1) % 8]).astype(np.int8) for i in range(8))
            up, right, down, left = n[0], n[2], n[4], n[6]
            keep_ends = (~(up & right & down) & ~(right & down & left) if first_pass
                         else ~(up & right & left) & ~(up & down & left))
            peel = thin & (count >= 2) & (count <= 6) & (crossings == 1) & keep_ends
            if peel.any():
                thin = thin & ~peel
                changed = True
        if not changed:
            return thin


def _eroded(mask: np.ndarray, square: bool) -> np.ndarray:
    """(H, W) mask less its boundary: pixels whose 4 (or, square, 8) neighbours are all set."""
    n = _neighbours(mask)
    sides = mask & n[0] & n[2] & n[4] & n[6]
    return sides & n[1] & n[3] & n[5] & n[7] if square else sides


def depth(mask: np.ndarray) -> np.ndarray:
    """(H, W) int: for each pixel of a mask, how many erosions it survives, plus one (0 outside):
    its distance to the background in px, in steps alternating 4- and 8-neighbour (an octagon,
    close to a disc)."""
    out = np.zeros(mask.shape, dtype=np.int32)
    layer, step = mask.astype(bool), 0
    while layer.any():
        out += layer
        layer = _eroded(layer, square=step % 2 == 1)
        step += 1
    return out


def stroke_width(mask: np.ndarray, lines: np.ndarray | None = None) -> float:
    """Median stroke width of a (H, W) mask in px: twice the distance to the background along
    the strokes' centre lines (its skeleton, if already known: `lines`), less the centre pixel
    counted twice (0 if empty)."""
    centre_depths = depth(mask)[skeleton(mask) if lines is None else lines]
    return 2.0 * float(np.median(centre_depths)) - 1 if centre_depths.size else 0.0


def _dilated(mask: np.ndarray, radius: float) -> np.ndarray:
    """(H, W) mask grown by a disc of `radius` px: every pixel within radius of one in mask."""
    reach = int(np.floor(radius))
    h, w = mask.shape
    padded = np.pad(mask, reach)
    out = np.zeros_like(mask)
    for dr in range(-reach, reach + 1):
        for dc in range(-reach, reach + 1):
            if dr * dr + dc * dc <= radius * radius:
                out |= padded[reach + dr:reach + dr + h, reach + dc:reach + dc + w]
    return out


def _pen_drawn(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A MNIST_STROKE px round pen put down at points (ys, xs) (n,) given in px of a (h, w)
    image: that image, float32, anti-aliased by drawing STROKE_SUPERSAMPLE times finer and
    averaging."""
    ss, (h, w) = STROKE_SUPERSAMPLE, shape
    fine = np.zeros((h * ss, w * ss), dtype=bool)
    fine[np.clip((ys * ss).astype(int), 0, h * ss - 1),
         np.clip((xs * ss).astype(int), 0, w * ss - 1)] = True
    pen = _dilated(fine, MNIST_STROKE / 2 * ss)
    return pen.reshape(h, ss, w, ss).mean(axis=(1, 3), dtype=np.float32)


def even_strokes(cropped: np.ndarray, fitted: np.ndarray, scale: float, *, refit: bool
                 ) -> tuple[np.ndarray | None, float]:
    """(cropped (h, w) redrawn with MNIST's pen, or None if its strokes are MNIST-like already
    in fitted (h', w') = cropped scaled by `scale`; their width there, px). A small drawing in
    a fixed pen, scaled up, has strokes too fat (its loops fill in); a hair-thin one, too faint.

    The strokes' centre lines (the skeleton of cropped at ink > 0.5, taken at a STROKE_WORK px
    long side) are drawn with a MNIST_STROKE px pen: with `refit` (cropped is the ink's box)
    scaled so lines and pen fill BOX px on the long side, else where `scale` puts them in a
    (h', w') image. Raises TooLittleInkError when the strokes are so fat for their length
    that the drawing is one blob.
    """
    work = STROKE_WORK / max(cropped.shape)
    fine = _resampled(cropped, (max(1, round(cropped.shape[0] * work)),
                                max(1, round(cropped.shape[1] * work)))) > 0.5
    lines = skeleton(fine)
    if not lines.any():
        return None, 0.0
    width = stroke_width(fine, lines)  # px at the working scale
    if STROKE_RANGE[0] <= width * scale / work <= STROKE_RANGE[1]:
        return None, width * scale / work
    rows, cols = np.nonzero(lines)
    extent = max(np.ptp(rows), np.ptp(cols)) + 1
    if extent < MIN_STROKE_LENGTHS * width:
        raise TooLittleInkError()
    if not refit:
        return _pen_drawn((rows + 0.5) * scale / work, (cols + 0.5) * scale / work,
                          fitted.shape), width * scale / work
    line_scale, radius = (BOX - MNIST_STROKE) / extent, MNIST_STROKE / 2
    ys, xs = (rows - rows.min()) * line_scale + radius, (cols - cols.min()) * line_scale + radius
    shape = tuple(min(FIELD, int(np.ceil(v.max() + radius))) for v in (ys, xs))
    return _pen_drawn(ys, xs, shape), width * scale / work


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
    ink, background, inverted = ink_map(image, options.invert)
    bbox = ink_bbox(ink)
    top, left, bottom, right = bbox
    cropped = ink[top:bottom, left:right] if options.crop else ink
    scale = BOX / max(cropped.shape) if options.fit else FIELD / max(ink.shape)
    fitted = resized(cropped, scale)
    redrawn, width = (even_strokes(cropped, fitted, scale, refit=options.crop and options.fit)
                      if options.strokes else (None, 0.0))
    strokes = fitted if redrawn is None else redrawn
    pasted = pasted_in_field(strokes)
    com = centre_of_mass(pasted)
    shift = (round(CENTRE[0] - com[0]), round(CENTRE[1] - com[1])) if options.centre else (0, 0)
    return Preprocessed(ink=ink, cropped=cropped, fitted=fitted, strokes=strokes,
                        pasted=pasted, final=shifted(pasted, *shift), background=background,
                        bbox=bbox, centre_of_mass=com, shift=shift, inverted=inverted,
                        stroke_width=width)
