"""Every input a visitor can reach, fed invalid, extreme and hostile values.

The formula box, every numeric control at and beyond its bounds, the canvas, image uploads, model
file uploads, the run id in the URL, and the data folder a host configures: each gets a clear
message, and nothing crashes (`not at.exception`), hangs (every script run is bounded by
AppTest's timeout) or runs code (payloads that would create a sentinel file if they ran).
Last, static guards: no eval/exec/pickle in the code, uploads capped in bytes and in pixels.
"""

from __future__ import annotations

import ast
import gzip
import io
import math
import os
import struct
import tempfile
import tomllib
import zipfile
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    ROOT,
    assert_calm,
    blank_canvas,
    canvas_state,
    image_bytes,
    mnist_digit,
    mnist_on_canvas,
    open_page,
    said,
)
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine import cnn, ffnn
from engine.app.settings import Limits, SettingsError, limits, parameter_count, parameter_problems
from engine.data import preprocess
from engine.models import checkpoint
from engine.training import runs

TIMEOUT = 60  # s per script run: a hang fails the test instead of blocking the suite


SENTINEL = Path(tempfile.gettempdir()) / f"glassbox-pwned-{os.getpid()}"


@pytest.fixture
def sentinel() -> Path:
    """A file that exists only if some payload managed to run code."""
    SENTINEL.unlink(missing_ok=True)
    yield SENTINEL
    assert not SENTINEL.exists(), "a hostile input ran code"


def room_run(at: AppTest, room: str):
    """The run in the session's room state `room` ("ff_room"); None without one."""
    try:
        return at.session_state[room].run
    except KeyError:
        return None


def page(path: str, tab: str | None = None, **query: str) -> AppTest:
    """A fresh session on `path` (URL query parameters from `query`), rendered without error,
    on its tab labelled `tab` when given."""
    return open_page(path, tab=tab, timeout=TIMEOUT, **query)


# --- the formula box --------------------------------------------------------------------------


def hostile_formulas(sentinel: Path) -> list[str]:
    return [
        f"__import__('os').system('touch {sentinel}')",
        f"open('{sentinel}', 'w').write('x')",
        "().__class__.__base__.__subclasses__()",
        "x.__class__", "getattr(x, 'real')", "globals()", "print(x)", "(lambda: x)()",
        "[c for c in x]", "x if x else 1", "x; y", "x = 1", "import os", "f'{x}'",
        "9**9**9**9", "10**10000", "exp(exp(exp(1000)))", "1/0", "log(-1)", "sqrt(-x**2-1)",
        "(" * 500 + "x" + ")" * 500, "-" * 10_000 + "x", "x" + "+x" * 50_000,
        "", "   ", "x +", "x\x00y", "ｘ＊ｙ", "x \u202e+ y", "😀", "1e999 * x", "x" * 5000,
    ]


@pytest.mark.slow
def test_the_formula_box_refuses_hostile_formulas_with_a_message(sentinel):
    at = page("pages/autodiff.py")
    for formula in hostile_formulas(sentinel):
        at.text_input(key="ad_formula").set_value(formula).run()
        assert_calm(at)
        assert "That formula can't be used" in said(at), f"no message for {formula[:40]!r}"
    for odd_but_fine in ["nan * x", "inf - inf", "e**pi", "x - x"]:  # nan, inf: variable names
        at.text_input(key="ad_formula").set_value(odd_but_fine).run()
        assert_calm(at)
        assert "That formula can't be used" not in said(at), odd_but_fine


# --- every numeric control, at and beyond its bounds ------------------------------------------


def out_of_bounds(widget) -> list[float]:
    """Values below, at and above the widget's bounds, and the non-numbers a float allows."""
    low, high = widget.min, widget.max
    values = []
    if low is not None:
        values += [low, low - 1]
    if high is not None:
        values += [high, high + 1]
    if isinstance(widget.value, float) or low is None:
        values += [math.nan, -math.inf, 1e308]
    return values


def walk_numeric_controls(at: AppTest) -> int:
    """Set every number input and slider on the page to each value of out_of_bounds, then back;
    after each, the page must run calmly and the control hold a finite value within its
    bounds. Returns how many values were tried."""
    tried = 0
    keys = [(w.type, w.key) for w in [*at.number_input, *at.slider]]
    for kind, key in keys:
        original = getattr(at, kind)(key=key).value
        for value in out_of_bounds(getattr(at, kind)(key=key)):
            getattr(at, kind)(key=key).set_value(value).run()
            assert_calm(at)
            widget = getattr(at, kind)(key=key)  # from the new run's tree
            shown = widget.value
            assert isinstance(shown, int | float) and math.isfinite(shown), (key, value, shown)
            assert widget.min is None or shown >= widget.min, (key, value, shown)
            assert widget.max is None or shown <= widget.max, (key, value, shown)
            tried += 1
        getattr(at, kind)(key=key).set_value(original).run()  # so the next control is shown
    return tried


@pytest.mark.slow
@pytest.mark.parametrize(("path", "setup"), [
    ("pages/autodiff.py", [("text_input", "ad_formula", "x**2 + 3*y**2")]),  # descent controls
    ("pages/feedforward.py", []),
    ("pages/cnn.py", [("checkbox", "cnn_use_dropout", True)]),  # enables the dropout rate
])
def test_every_numeric_control_holds_at_and_beyond_its_bounds(path, setup):
    at = page(path)
    for kind, key, value in setup:
        getattr(at, kind)(key=key).set_value(value).run()
    assert walk_numeric_controls(at) >= 10


@pytest.mark.slow
@pytest.mark.parametrize(("path", "start", "maxed", "reasons"), [
    ("pages/feedforward.py", "ff_start", ["ff_epochs", "ff_batch_size", "ff_learning_rate"],
     ["epochs is over this server's limit", "more than the 3700 training digits"]),
    ("pages/cnn.py", "cnn_start", ["cnn_epochs", "cnn_batch_size", "cnn_learning_rate"],
     ["a batch of 3700 is over this server's limit"]),
])
def test_training_with_the_controls_at_their_maxima_is_refused_with_reasons(path, start, maxed,
                                                                             reasons):
    at = page(path)
    for key in maxed:
        at.number_input(key=key).set_value(at.number_input(key=key).max).run()
    at.button(key=start).click().run()
    assert_calm(at)
    for reason in reasons:
        assert reason in said(at)
    assert room_run(at, f"{start.split('_')[0]}_room") is None


IMPOSSIBLE_LAYERS = ["0", "-3", "1e9", "99999999999999999999", "nan", "16, x", "1" * 5000, "\x00",
                     ", ".join(["16"] * 9)]  # one layer over the limit of 8


@pytest.mark.slow
@pytest.mark.parametrize(("path", "key", "start"), [
    ("pages/feedforward.py", "ff_hidden", "ff_start"),
    ("pages/cnn.py", "cnn_filters", "cnn_start"),
])
def test_the_layer_boxes_refuse_impossible_nets_with_a_message(path, key, start):
    at = page(path)
    for text in IMPOSSIBLE_LAYERS:
        at.text_input(key=key).set_value(text).run()
        at.button(key=start).click().run()
        assert_calm(at)
        assert at.error, text
        assert room_run(at, f"{start.split('_')[0]}_room") is None


# --- the canvas -------------------------------------------------------------------------------


def odd_canvases() -> dict[str, np.ndarray]:
    noise = np.random.default_rng(0).integers(0, 256, (280, 280, 4), dtype=np.uint8)
    white = np.full((280, 280, 4), 255, np.uint8)
    clear = np.zeros((280, 280, 4), np.uint8)  # fully transparent
    dot = blank_canvas()
    dot[140, 140, :3] = 255
    digit = mnist_on_canvas(mnist_digit(3))
    return {"1x1": blank_canvas(1), "1x2000": np.repeat(blank_canvas(1), 2000, axis=1),
            "2000x1 of ink": np.full((2000, 1, 4), 255, np.uint8), "noise": noise,
            "all white": white, "transparent": clear, "one pixel": dot,
            "half-transparent digit": np.concatenate([digit[..., :3], digit[..., 3:] // 2], -1),
            "1200x1200 digit": np.asarray(Image.fromarray(digit).resize((1200, 1200)))}


@pytest.mark.slow
def test_odd_drawings_get_an_answer_or_a_message():
    at = page("pages/sketch.py")
    for name, rgba in odd_canvases().items():
        at.session_state["sk_canvas_0"] = canvas_state(rgba)
        at.run()
        assert_calm(at)
        answered = len(at.get("plotly_chart")) > 0
        assert answered or said(at), name


# --- image uploads ----------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels (a decompression bomb's header), with one tiny
    compressed row after it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def hostile_images() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, what the message must say)."""
    good = image_bytes(mnist_on_canvas(mnist_digit(7)))
    return {
        "notes.png": (b"just some text", "not an image"),
        "report.png": (b"%PDF-1.7\n" + b"x" * 1000, "not an image"),
        "cut.png": (good[: len(good) // 2], "damaged"),
        "header-only.png": (good[:40], "damaged"),
        "bomb.png": (png_header(100_000, 100_000), "too large"),
        "just-over.png": (png_header(7000, 6000), "too large"),
        "big.png": (b"\x89PNG\r\n\x1a\n" + bytes(6 * 2**20), "damaged"),  # over 5 MB
        "empty.png": (b"", "not an image"),
    }


@pytest.mark.slow
def test_hostile_image_uploads_get_a_clear_message():
    at = page("pages/sketch.py")
    for name, (data, reason) in hostile_images().items():
        at.file_uploader(key="sk_upload").set_value((name, data, "image/png")).run()
        assert_calm(at)
        message = " ".join(e.value for e in at.error)
        assert name in message and reason in message.lower(), (name, message)


def test_pillow_refuses_decompression_bombs_from_the_header():
    assert Image.MAX_IMAGE_PIXELS == preprocess.MAX_IMAGE_PIXELS is not None
    with pytest.raises(preprocess.ImageTooLargeError):
        preprocess.load_image(png_header(100_000, 100_000))


# --- model file uploads -----------------------------------------------------------------------


class Exploit:
    """Unpickling this object would create the sentinel file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def tiny_ffnn_file(**changes) -> bytes:
    arch = ffnn.Architecture((8,))
    params = {k: np.full(s, 0.01, np.float32) for k, s in arch.param_shapes().items()}
    return ffnn.checkpoint_bytes(arch, {**params, **changes})


def zip_bomb() -> bytes:
    """A model file whose one array unpacks to 256 MB of zeros from ~250 kB."""
    buffer = io.BytesIO()
    with (zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
          archive.open("w0.npy", "w", force_zip64=True) as member):
        np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (2**26,)})
        zeros = bytes(2**24)
        for _ in range(16):
            member.write(zeros)
    return buffer.getvalue()


@cache
def hostile_model_files(sentinel: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, what the message must say)."""
    spec = cnn.CNNSpec((2,))
    cnn_params = {k: np.zeros(s, np.float32) for k, s in spec.param_shapes().items()}
    exploit = np.array([Exploit(sentinel)], dtype=object)
    return {
        "garbage.npz": (b"\x00garbage" * 100, "not a model file"),
        "pickle.npz": (npz(w0=exploit), "pickled"),
        "pickle-meta.npz": (npz(__metadata__=exploit), "pickled"),
        "plain.npz": (npz(w0=np.zeros(3)), "no glassbox metadata"),
        "array.npz": (b"\x93NUMPY" + b"\x00" * 100, "single numpy array"),
        "truncated.npz": (tiny_ffnn_file()[:300], "not a readable model file"),
        "wrong-shape.npz": (tiny_ffnn_file(w0=np.zeros((10, 8), np.float32)), "shape"),
        "nan.npz": (tiny_ffnn_file(b0=np.full(8, np.nan, np.float32)), "nan"),
        "inf.npz": (tiny_ffnn_file(w1=np.full((8, 10), np.inf, np.float32)), "infinite"),
        "float64.npz": (tiny_ffnn_file(b0=np.zeros(8)), "float64"),
        "ints.npz": (tiny_ffnn_file(b0=np.zeros(8, np.int32)), "not a float array"),
        "extra.npz": (tiny_ffnn_file(evil=np.zeros(1, np.float32)), "unexpected evil"),
        "cnn.npz": (cnn.checkpoint_bytes(spec, cnn_params), "holds a cnn;"),
        "bomb.npz": (zip_bomb(), "unpacks to"),
        "huge.npz": (b"PK" + bytes(6 * 2**20), "not a readable model file"),  # over 5 MB
    }


@pytest.mark.slow
def test_hostile_model_files_are_refused_with_a_reason(sentinel):
    at = page("pages/feedforward.py", tab="Model file")
    for name, (data, reason) in hostile_model_files(sentinel).items():
        at.file_uploader(key="ff_model_file").set_value((name, data, "application/zip")).run()
        assert_calm(at)
        message = " ".join(e.value for e in at.error)
        assert name in message and reason in message.lower() or (
            "mb" in message.lower() and len(data) > limits().max_upload_mb * 2**20), (name,
                                                                                    message)
        assert "the default model" in " ".join(m.value for m in at.markdown)  # still in use


def test_a_pickle_bearing_run_file_is_refused_without_running_it(sentinel, runs_dir):
    run_id = runs.new_run_id()
    runs.save_run(run_id, npz(__metadata__=np.array([Exploit(sentinel)], dtype=object)))
    at = page("pages/feedforward.py", run=run_id)
    assert "pickled" in said(at)
    assert room_run(at, "ff_room") is None


def test_model_file_readers_never_unpickle(sentinel):
    for name, (data, _) in hostile_model_files(sentinel).items():
        for read in (ffnn.read_checkpoint, cnn.read_checkpoint):
            try:
                read(data)
            except checkpoint.CheckpointError:
                continue
            assert read is cnn.read_checkpoint and name == "cnn.npz"


# --- the run id in the URL --------------------------------------------------------------------


def hostile_run_ids() -> list[str]:
    return ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "a" * 10 + "/" + "b" * 11,
            "." * 22, "x" * 10_000, "ü" * 22, "\u202e" + "a" * 21, "a" * 21 + "\x00",
            "1", "7f1f4f8e-2b0c-4c8e-9d2a-0c3c1e1f9a11",  # a session id's (uuid) format
            "AAAAAAAAAAAAAAAAAAAAAA",  # well-formed, never issued
            "", " "]


@pytest.mark.slow
def test_hostile_run_ids_get_a_warning_and_nothing_else(runs_dir):
    runs_dir.mkdir()
    (runs_dir.parent / "secret.npz").write_bytes(tiny_ffnn_file())  # a model next to the folder
    at = page("pages/feedforward.py")
    for run_id in hostile_run_ids():
        at.query_params["run"] = run_id
        at.run()
        assert_calm(at)
        assert "Cannot bring back the training run" in said(at), run_id
        assert room_run(at, "ff_room") is None
        assert "the default model" in " ".join(m.value for m in at.markdown)
        assert run_id not in said(at) or len(run_id) < 2  # the input is never echoed


# --- the data folder a host configures --------------------------------------------------------


def corrupt_idx_folder(folder: Path) -> Path:
    folder.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\xff" * 64))
    return folder


@pytest.mark.parametrize("kind", ["missing", "a file", "empty", "corrupt IDX", "not gzip"])
def test_a_broken_data_folder_is_reported_and_the_embedded_set_still_works(kind, tmp_path,
                                                                          monkeypatch):
    folder = tmp_path / "mnist"
    if kind == "a file":
        folder.write_text("not a folder")
    elif kind == "empty":
        folder.mkdir()
    elif kind == "corrupt IDX":
        corrupt_idx_folder(folder)
    elif kind == "not gzip":
        corrupt_idx_folder(folder)
        (folder / "train-images-idx3-ubyte.gz").write_bytes(b"plain bytes")
    monkeypatch.setenv("GLASSBOX_MNIST_DIR", str(folder))
    at = page("pages/feedforward.py")
    assert "Full MNIST is configured but unusable" in said(at)
    assert at.selectbox(key="ff_dataset").value == "embedded"


# --- static guards ----------------------------------------------------------------------------

FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
FORBIDDEN_KEYWORDS = {("allow_pickle", True), ("shell", True), ("unsafe_allow_html", True)}


def shipped_python_files() -> list[Path]:
    """Every .py file that runs in the app or its tools (not the tests)."""
    return [p for p in ROOT.rglob("*.py")
            if not p.relative_to(ROOT).parts[0].startswith((".", "tests", "test-artifacts"))]


def dangerous_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Calls of eval/exec & co., imports of pickle & co., allow_pickle=True & co. in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in FORBIDDEN_CALLS):
            found.append(f"{where} calls {node.func.id}")
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(
                node, ast.ImportFrom) and node.module else [])
            found += [f"{where} imports {n}" for n in names
                      if n.split(".")[0] in FORBIDDEN_MODULES]
        if isinstance(node, ast.keyword) and isinstance(node.value, ast.Constant) and (
                (node.arg, node.value.value) in FORBIDDEN_KEYWORDS):
            found.append(f"{where} passes {node.arg}={node.value.value}")
    return found


@pytest.mark.slow
def test_no_code_runs_from_data_anywhere_in_the_app():
    files = shipped_python_files()
    assert len(files) > 20 and ROOT / "engine" / "autodiff" / "expr.py" in files
    assert [use for path in files for use in dangerous_uses(path)] == []


def test_the_guard_catches_what_it_is_meant_to(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nfrom marshal import loads\neval('1')\n"
                   "import numpy as np\nnp.load('f', allow_pickle=True)\n")
    uses = [use.split(" ", 1)[1] for use in dangerous_uses(bad, tmp_path)]
    assert uses == ["imports pickle", "imports marshal", "calls eval", "passes allow_pickle=True"]


def test_the_server_caps_uploads_where_the_app_says_it_does():
    """Streamlit refuses uploads over server.maxUploadSize before the app sees them; the app's
    own check and its messages use limits().max_upload_mb: the two must agree."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == limits().max_upload_mb


# --- the largest model the limits allow -------------------------------------------------------


def largest_allowed_ffnn(caps: Limits) -> ffnn.Architecture:
    """The feed-forward net with the most parameters the limits allow: at each allowed depth,
    every hidden layer as wide as max_hidden_units and max_parameters let it be."""
    def count(arch: ffnn.Architecture) -> int:
        return parameter_count(arch.param_shapes())

    widest = []
    for depth in range(1, caps.max_hidden_layers + 1):
        fitting = [w for w in range(1, caps.max_hidden_units + 1)
                   if count(ffnn.Architecture((w,) * depth)) <= caps.max_parameters]
        widest += [ffnn.Architecture((max(fitting),) * depth)] if fitting else []
    return max(widest, key=count)


def test_the_largest_model_the_limits_allow_fits_the_upload_cap():
    """Its file, with incompressible weights and a full run's history in the metadata, can be
    uploaded again."""
    caps = limits()
    arch = largest_allowed_ffnn(caps)
    assert parameter_count(arch.param_shapes()) > 0.9 * caps.max_parameters  # the cap binds
    assert parameter_problems(arch.param_shapes(), caps) == []
    rng = np.random.default_rng(0)
    params = {name: rng.standard_normal(shape, dtype=np.float32)
              for name, shape in arch.param_shapes().items()}
    steps = caps.max_epochs * math.ceil(3700 / 64)  # the embedded set at the default batch
    run = {"status": "finished", "history": {"losses": rng.random(steps).tolist(),
                                             "eval_steps": list(range(2 * caps.max_epochs))}}
    data = ffnn.checkpoint_bytes(arch, params, training={"epochs": caps.max_epochs}, run=run,
                                 metrics={"test_accuracy": 0.5})
    assert len(data) <= caps.max_upload_mb * 2**20, f"{len(data) / 2**20:.2f} MB"
    assert ffnn.read_checkpoint(data)[0] == arch


def test_a_model_over_the_parameter_limit_is_refused_with_the_reason():
    caps = Limits(max_parameters=1000)
    fits, too_big = ffnn.Architecture((1,)), ffnn.Architecture((2,))  # 795 and 1,600 numbers
    assert parameter_problems(fits.param_shapes(), caps) == []
    assert parameter_problems(too_big.param_shapes(), caps) == [
        "A model of 1,600 weights and biases is over this server's limit of 1,000 (its file "
        "must fit the 5 MB upload cap)."]


def test_a_parameter_limit_whose_files_could_not_be_uploaded_is_a_settings_error(monkeypatch):
    monkeypatch.setenv("GLASSBOX_MAX_PARAMETERS", "2000000")
    with pytest.raises(SettingsError, match="over GLASSBOX_MAX_UPLOAD_MB=5"):
        limits()
    monkeypatch.setenv("GLASSBOX_MAX_UPLOAD_MB", "10")
    assert limits().max_parameters == 2_000_000
