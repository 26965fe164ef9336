"""engine.data.preprocess: canvas/upload -> MNIST-style 28x28, its stages, options and bad input."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np
import pytest
from helpers import (
    PEN_WIDTH,
    blank_canvas,
    draw_stroke,
    image_bytes,
    mnist_digit,
    mnist_on_canvas,
    mnist_test_digits,
    on_paper,
    shaded_photo,
    vertical_one,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from engine.data import preprocess as pp
from engine.data.mnist import as_float
from engine.data.preprocess import PreprocessOptions, preprocess


def ink_box_long_side(image: np.ndarray, threshold: float = 0.0) -> int:
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def correlation_up_to_1px(a: np.ndarray, b: np.ndarray) -> float:
    """Best correlation of a with b moved by at most one pixel each way (centring rounds)."""
    return max(correlation(a, pp.shifted(b, dr, dc)) for dr in (-1, 0, 1) for dc in (-1, 0, 1))


# Equivalent inputs are compared on `pasted`: `final` adds a whole-pixel shift that rounds the
# centre of mass, and a symmetric stroke sits exactly on a rounding tie.


# --- the MNIST convention -------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(label=st.integers(0, 9), size=st.integers(45, 120), top=st.integers(0, 1000),
       left=st.integers(0, 1000))
def test_a_small_off_centre_digit_ends_up_fitted_and_centred(label, size, top, left) -> None:
    digit = mnist_digit(label)
    canvas = mnist_on_canvas(digit, top=top % (280 - size), left=left % (280 - size), size=size)
    result = preprocess(canvas)
    assert result.final.shape == (28, 28) and result.final.dtype == np.float32
    assert result.final.min() >= 0 and result.final.max() <= 1
    assert max(result.fitted.shape) == 20
    assert ink_box_long_side(result.final) == 20
    row, col = pp.centre_of_mass(result.final)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1
    assert result.final.sum() == pytest.approx(result.pasted.sum())  # no ink shifted off the edge
    # Blown up and brought back, the digit is again the MNIST digit it came from.
    assert correlation_up_to_1px(result.final, as_float(digit)) > 0.9


@pytest.mark.parametrize(("h", "w"), [(20, 20), (20, 7), (13, 20), (1, 1), (28, 28)])
def test_pasting_puts_the_box_in_the_middle_of_the_field(h, w) -> None:
    # Margins counted by hand on each side: equal, or one more below / right when odd.
    box = np.arange(1, h * w + 1, dtype=np.float32).reshape(h, w)
    field = pp.pasted_in_field(box)
    rows, cols = np.flatnonzero(field.any(axis=1)), np.flatnonzero(field.any(axis=0))
    above, below = rows[0], 27 - rows[-1]
    left, right = cols[0], 27 - cols[-1]
    assert below - above in (0, 1) and right - left in (0, 1)
    np.testing.assert_array_equal(field[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], box)


def test_stages_and_box_describe_the_drawing() -> None:
    result = preprocess(vertical_one())
    top, left, bottom, right = result.bbox
    assert result.ink.shape == (280, 280)
    assert result.cropped.shape == (bottom - top, right - left)
    assert (top, bottom) == pytest.approx((56 - 9, 224 + 9), abs=2)  # 20%..80% plus the pen radius
    assert right - left == pytest.approx(18, abs=2)
    assert result.fitted.shape[0] == 20 and result.fitted.shape[1] <= 4
    assert result.shift == (round(14 - result.centre_of_mass[0]),
                            round(14 - result.centre_of_mass[1]))
    assert not result.inverted


def test_transparent_canvas_uses_alpha_as_ink() -> None:
    opaque = vertical_one()
    transparent = opaque.copy()
    transparent[..., 3] = transparent[..., 0]  # ink only where drawn, like a canvas with no bg
    transparent[..., :3] = 0  # even black ink on a transparent background reads as ink
    assert np.allclose(preprocess(transparent).pasted, preprocess(opaque).pasted, atol=1e-5)


def test_dark_ink_on_light_paper_reads_like_light_on_dark() -> None:
    canvas = mnist_on_canvas(mnist_digit(5), size=150)
    upload = pp.load_image(image_bytes(on_paper(canvas)))
    result = preprocess(upload)
    assert result.inverted
    assert np.abs(result.pasted - preprocess(canvas).pasted).max() < 0.02


def test_a_noisy_photo_of_grey_paper_still_reads() -> None:
    canvas = mnist_on_canvas(mnist_digit(7), size=120)
    paper = on_paper(canvas, paper=190, ink=60).astype(np.int16)
    paper[..., :3] += np.random.default_rng(0).integers(-12, 13, paper.shape[:2])[..., None]
    upload = pp.load_image(image_bytes(np.clip(paper, 0, 255).astype(np.uint8), "JPEG"))
    assert correlation(preprocess(upload).final, preprocess(canvas).final) > 0.95


def test_grey_and_float_arrays_are_accepted() -> None:
    grey = vertical_one()[..., 0]
    expected = preprocess(vertical_one()).pasted
    assert np.allclose(preprocess(grey).pasted, expected, atol=1e-5)
    assert np.allclose(preprocess(grey / 255.0).pasted, expected, atol=1e-5)


def test_an_mnist_digit_itself_is_left_as_it_is() -> None:
    digit = mnist_digit(2)
    assert correlation(preprocess(digit).final, as_float(digit)) > 0.97


# --- each step can be switched off -----------------------------------------------------------


def test_without_crop_the_whole_canvas_is_fitted() -> None:
    result = preprocess(vertical_one(), options=PreprocessOptions(crop=False))
    assert result.cropped.shape == (280, 280)
    assert result.fitted.shape == (20, 20)
    assert ink_box_long_side(result.final, 0.1) < 20  # the stroke is now smaller than 20 px


def test_without_fit_the_digit_keeps_its_drawn_size() -> None:
    canvas = mnist_on_canvas(mnist_digit(4), size=100)
    result = preprocess(canvas, options=PreprocessOptions(fit=False))
    assert max(result.fitted.shape) == round(max(result.cropped.shape) * 28 / 280)
    assert max(result.fitted.shape) < 20


def test_without_crop_and_fit_the_canvas_is_plainly_shrunk_to_28() -> None:
    result = preprocess(vertical_one(), options=PreprocessOptions(crop=False, fit=False))
    assert result.fitted.shape == (28, 28)
    assert np.array_equal(result.pasted, result.fitted)


def test_without_centre_the_box_centred_image_is_final() -> None:
    canvas = mnist_on_canvas(mnist_digit(7), size=150)  # a 7's mass sits high and right
    result = preprocess(canvas, options=PreprocessOptions(centre=False))
    assert result.shift == (0, 0)
    assert np.array_equal(result.final, result.pasted)
    assert preprocess(canvas).shift != (0, 0)


def test_invert_can_be_forced_either_way() -> None:
    canvas = vertical_one()
    assert np.array_equal(preprocess(canvas, options=PreprocessOptions(invert=False)).final,
                          preprocess(canvas).final)
    with pytest.raises(pp.FullCanvasError):  # inverted, the black background becomes all ink
        preprocess(canvas, options=PreprocessOptions(invert=True))
    paper = on_paper(canvas)
    assert preprocess(paper, options=PreprocessOptions(invert=True)).inverted
    with pytest.raises(pp.FullCanvasError):
        preprocess(paper, options=PreprocessOptions(invert=False))


# --- bad input: each gets its own exception and a sentence for the learner -----------------


CANVAS = PreprocessOptions(invert=False)  # the sketch widget's drawings: always light on dark


def three_pixels(side: int) -> np.ndarray:
    canvas = blank_canvas(side)
    canvas[side // 2, side // 2:side // 2 + 3, :3] = 255
    return canvas


def painted_but_a_margin() -> np.ndarray:
    canvas = blank_canvas()
    canvas[15:-15, 15:-15, :3] = 255
    return canvas


@pytest.mark.parametrize(("canvas", "error"), [
    (blank_canvas(), pp.EmptyDrawingError),
    (np.zeros((280, 280, 4), np.uint8), pp.EmptyDrawingError),  # fully transparent
    (draw_stroke([(100, 100)]), pp.TooLittleInkError),  # a single dot of the pen
    (draw_stroke([(100, 100), (103, 101)]), pp.TooLittleInkError),  # a tiny scribble
    (three_pixels(280), pp.TooLittleInkError),
    (three_pixels(28), pp.TooLittleInkError),
    (np.full((280, 280, 4), 255, np.uint8), pp.FullCanvasError),
    (painted_but_a_margin(), pp.FullCanvasError),
    (np.zeros((280, 280, 2), np.uint8), pp.NotAnImageError),
    (np.zeros((0, 5), np.uint8), pp.NotAnImageError),
], ids=["black", "transparent", "dot", "tiny-scribble", "3-pixels", "3-pixels-of-28",
        "full-white", "painted-but-a-margin", "2-channels", "no-pixels"])
def test_bad_drawings_raise_their_own_error(canvas, error) -> None:
    with pytest.raises(error) as caught:
        preprocess(canvas, options=CANVAS)
    assert isinstance(caught.value, pp.PreprocessError)
    message = str(caught.value)
    assert message[0].isupper() and message.endswith(".") and "Error" not in message


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny but well-formed 1-bit PNG whose header claims width x height: never allocated."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) \
        + chunk(b"IEND", b"")


GOOD_PNG = image_bytes(vertical_one())


@pytest.mark.parametrize(("data", "error"), [
    (b"", pp.NotAnImageError),
    (b"7\n", pp.NotAnImageError),
    (b"%PDF-1.7\n" + bytes(100), pp.NotAnImageError),
    (GOOD_PNG[: len(GOOD_PNG) // 2], pp.TruncatedImageError),
    (GOOD_PNG[:40], pp.TruncatedImageError),  # cut inside the header
    (image_bytes(vertical_one(), "JPEG")[:300], pp.TruncatedImageError),
    (png_header_claiming(20_000, 20_000), pp.ImageTooLargeError),
    (png_header_claiming(7_000, 7_000), pp.ImageTooLargeError),  # 49 MP: just over the cap
], ids=["empty", "text", "pdf", "half-png", "png-header-cut", "jpeg-cut", "20000x20000",
        "7000x7000"])
def test_bad_uploads_raise_their_own_error(data, error) -> None:
    with pytest.raises(error) as caught:
        pp.load_image(data)
    assert str(caught.value).endswith(".")


def test_uploads_decode_to_rgba() -> None:
    canvas = vertical_one()
    assert np.array_equal(pp.load_image(GOOD_PNG), canvas)
    for fmt in ("JPEG", "BMP", "GIF", "WEBP"):
        decoded = pp.load_image(image_bytes(canvas[..., :3], fmt))
        assert decoded.shape == (280, 280, 4) and decoded.dtype == np.uint8
        assert np.allclose(preprocess(decoded).pasted, preprocess(canvas).pasted, atol=0.1)


def test_big_uploads_are_shrunk_and_16_bit_ones_read() -> None:
    wide = pp.load_image(image_bytes(np.zeros((1500, 3000), np.uint8), "PNG"))
    assert wide.shape == (512, 1024, 4)
    sixteen = (vertical_one()[..., 0].astype(np.uint16) * 257)
    assert np.allclose(preprocess(pp.load_image(image_bytes(sixteen))).pasted,
                       preprocess(vertical_one()).pasted, atol=0.01)


def test_exif_orientation_is_applied() -> None:
    tall = blank_canvas()[:200, :100, :3]  # 200 rows x 100 columns
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    assert pp.load_image(image_bytes(tall, "JPEG", exif=exif)).shape == (100, 200, 4)


# --- strokes: measured, and redrawn with MNIST's pen when a small drawing makes them fat -------


def pillow_line(width: int, end: tuple[int, int] = (110, 110), side: int = 120) -> np.ndarray:
    """A white line of `width` px from (10, 10) to `end` on black, (side, side) bool."""
    image = Image.new("L", (side, side))
    ImageDraw.Draw(image).line([(10, 10), end], fill=255, width=width)
    return np.asarray(image) > 127


@pytest.mark.parametrize("width", [3, 6, 11, 20])
@pytest.mark.parametrize("end", [(110, 10), (110, 110)], ids=["straight", "diagonal"])
def test_stroke_width_is_the_width_pillow_drew(width, end) -> None:
    assert pp.stroke_width(pillow_line(width, end)) == pytest.approx(width, abs=max(1, width / 8))


def test_depth_is_the_distance_to_the_background() -> None:
    """Against brute force: each pixel's Euclidean distance to the nearest background pixel."""
    mask = np.zeros((40, 40), bool)
    mask[5:35, 8:30] = True
    mask[15:25, 14:22] = False  # a hole
    background = np.argwhere(~np.pad(mask, 1))  # the padding is background too
    inside = np.argwhere(np.pad(mask, 1))
    nearest = np.sqrt(((inside[:, None] - background[None]) ** 2).sum(-1)).min(axis=1)
    depth = pp.depth(mask)[mask]
    assert np.all(np.abs(depth - nearest) <= 0.09 * nearest + 1)
    assert not pp.depth(mask)[~mask].any()


def test_the_skeleton_of_a_thick_ring_is_a_thin_ring_down_its_middle() -> None:
    image = Image.new("L", (100, 100))
    ImageDraw.Draw(image).ellipse([10, 10, 90, 90], outline=255, width=12)
    lines = pp.skeleton(np.asarray(image) > 127)
    rows, cols = np.nonzero(lines)
    radius = np.hypot(rows - 50, cols - 50)
    assert np.all(np.abs(radius - (40 - 6)) <= 2)  # down the middle of the 12 px band
    angles = np.degrees(np.arctan2(rows - 50, cols - 50))
    assert len(np.unique(np.floor((angles + 180) / 10) % 36)) == 36  # all the way round: a ring
    blocks = lines[:-1, :-1] & lines[1:, :-1] & lines[:-1, 1:] & lines[1:, 1:]
    assert not blocks.any()  # one pixel thin


def mnist_stroke_widths(images: np.ndarray) -> np.ndarray:
    """Stroke widths (n,) in px of 28x28 digits, measured on a 4x Lanczos enlargement."""
    return np.array([pp.stroke_width(pp._resampled(pp._as_unit_float(image), (112, 112)) > 0.5)
                     / 4 for image in images])


def pen_drawn(points: Sequence[tuple[float, float]], size: int) -> np.ndarray:
    """A digit drawn as the sketch widget draws: the app's 18 px pen along `points` (fractions
    of a size x size box at (110, 110)), on the black 280x280 canvas."""
    at = [(110 + x * size, 110 + y * size) for x, y in points]
    return draw_stroke(at, width=PEN_WIDTH)


SMALL = round(0.15 * 280)  # px: the "15% of the canvas"
SPAN = SMALL - PEN_WIDTH - 1  # px between the centre lines' ends: the pen adds the rest
SEVEN = [(0.0, 0.0), (1.0, 0.0), (0.3, 1.0)]
FOUR = [(0.6, 0.05), (0.05, 0.65), (0.95, 0.65)]


@pytest.mark.slow
def test_a_small_seven_gets_mnist_strokes_and_every_model_reads_it() -> None:
    """Issue 18, item 6: scaled up, the pen's strokes filled a small 7 into a blob read as 8."""
    from engine.app.predict import load_default_models, probabilities_of

    canvas = pen_drawn(SEVEN, SPAN)
    result = preprocess(canvas, options=PreprocessOptions(invert=False))
    assert max(result.bbox[2] - result.bbox[0], result.bbox[3] - result.bbox[1]) <= SMALL
    low, high = np.percentile(mnist_stroke_widths(mnist_test_digits()), [1, 99])
    assert low <= mnist_stroke_widths(result.final[None])[0] <= high
    models, _ = load_default_models()
    guesses = {name: int(p.argmax()) for name, p in probabilities_of(models, result.final).items()}
    assert set(guesses.values()) == {7}, guesses


def test_a_small_blob_is_refused_as_too_small_rather_than_guessed() -> None:
    """A 4 at 15% in the 18 px pen fills in to a blob no stroke width can undo."""
    with pytest.raises(pp.TooLittleInkError):
        preprocess(pen_drawn(FOUR, SPAN), options=PreprocessOptions(invert=False))


def test_mnist_like_strokes_are_kept_and_the_step_can_be_switched_off() -> None:
    result = preprocess(vertical_one())  # 168 px tall in the 18 px pen: ~2 px at 20 px
    assert not result.restroked and result.strokes is result.fitted
    assert 1.5 <= result.stroke_width <= 2.5
    small = pen_drawn(SEVEN, SPAN)
    off = preprocess(small, options=PreprocessOptions(strokes=False, invert=False))
    assert not off.restroked and off.stroke_width == 0.0
    assert preprocess(small, options=PreprocessOptions(invert=False)).restroked


# --- photos: the paper's uneven lighting is estimated and divided out -------------------------


def test_the_background_of_a_shaded_page_is_found_under_the_ink() -> None:
    """A known quadratic lighting surface with strokes on it: the fit recovers the surface."""
    y, x = np.mgrid[0:200, 0:300] / np.array([200, 300])[:, None, None]
    surface = 0.3 + 0.5 * x - 0.3 * (y - 0.5) ** 2
    page = surface.copy()
    page[40:160, 100:115] = 0.05  # strokes, darker than any paper
    page[40:55, 100:220] = 0.05
    assert np.abs(pp.background_surface(page) - surface).max() < 0.02


@pytest.mark.slow
def test_a_shaded_noisy_photo_of_a_three_gets_a_tight_box_and_reads_as_three() -> None:
    """Issue 18, item 7: the shading made the ink box the whole photo, and the FFNNs said 8."""
    from engine.app.predict import load_default_models, probabilities_of

    models, _ = load_default_models()
    for digit in mnist_test_digits(3)[:3]:
        data, box = shaded_photo(digit)
        result = preprocess(pp.load_image(data))
        assert result.inverted and result.uneven_lighting
        assert np.abs(np.subtract(result.bbox, box)).max() <= 4, (result.bbox, box)
        guesses = {n: int(p.argmax()) for n, p in probabilities_of(models, result.final).items()}
        assert set(guesses.values()) == {3}, guesses
