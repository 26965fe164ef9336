"""engine.app.predict: the default models as `Model`s, and `python -m engine.app.predict` on real
files."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import (
    ROOT,
    image_bytes,
    mnist_digit,
    mnist_on_canvas,
    on_device,
    on_paper,
    vertical_one,
)

from engine import cnn, ffnn
from engine.app.assets import DEFAULT_MODEL_FILES, default_model_path
from engine.app.predict import (
    DEFAULT_MODELS,
    ModelUnavailableError,
    classify,
    load_default_model,
    main,
    model_from_bytes,
)
from engine.app.pretrain import REGISTRY
from engine.data.mnist import as_float, embedded_split
from engine.models import checkpoint
from engine.models.files import model_file
from engine.models.model import Model
from engine.training.loop import shifted


def test_every_default_model_gives_ten_probabilities_per_image(defaults) -> None:
    images = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    for name, model in defaults.items():
        probabilities = model.predict_proba(images)
        assert probabilities.shape == (3, 10), name
        np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
        assert (probabilities >= 0).all()


def test_a_model_predicts_what_its_engine_predicts() -> None:
    arch = ffnn.Architecture((16,))
    params = ffnn.init_params(jax.random.key(3), arch)
    images = np.random.default_rng(1).random((4, 28, 28), dtype=np.float32)
    expected = ffnn.predict_proba(params, images, arch=arch)
    from_file = model_from_bytes(ffnn.checkpoint_bytes(arch, params))
    np.testing.assert_allclose(from_file.predict_proba(images), expected, rtol=1e-6)
    np.testing.assert_allclose(on_device(ffnn.FAMILY, arch, params).predict_proba(images), expected,
                               rtol=1e-6)
    assert from_file.describe() == "784-16-10, relu"


def test_a_cnn_model_file_predicts_what_the_cnn_predicts() -> None:
    spec = cnn.CNNSpec(filters=(4,))
    params = cnn.init_params(jax.random.PRNGKey(2), spec)
    images = np.random.default_rng(1).random((2, 28, 28), dtype=np.float32)
    model = model_from_bytes(cnn.checkpoint_bytes(spec, params))
    assert model.kind == "cnn"
    np.testing.assert_allclose(model.predict_proba(images),
                               cnn.predict_proba(params, images, spec=spec), rtol=1e-6)


def test_a_model_round_trips_through_its_file_with_its_metadata() -> None:
    arch = ffnn.Architecture((4,))
    model = Model(ffnn.FAMILY, arch, ffnn.init_params(jax.random.key(0), arch),
                  {"dataset": "tiny", "status": "stopped"})
    back = model_from_bytes(model_file(model, metrics={"test_accuracy": 0.5}))
    assert back.architecture == arch and back.usable
    assert back.metadata["dataset"] == "tiny" and back.metadata["metrics"]["test_accuracy"] == 0.5
    for name, value in model.params.items():
        np.testing.assert_array_equal(np.asarray(back.params[name]), value)


def test_only_a_finished_or_stopped_model_with_finite_params_is_usable() -> None:
    arch = ffnn.Architecture((4,))
    params = ffnn.init_params(jax.random.key(0), arch)
    assert Model(ffnn.FAMILY, arch, params, {}).usable  # a model file: no status, a default
    assert not Model(ffnn.FAMILY, arch, params, {"status": "diverged"}).usable
    broken = {**params, "b0": np.full(4, np.nan, np.float32)}
    assert not Model(ffnn.FAMILY, arch, broken, {"status": "finished"}).usable


def test_predict_does_not_import_the_pretrain_build_command() -> None:
    source = (ROOT / "engine" / "app" / "predict.py").read_text()
    imported = {alias.name for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names} | {node.module for node in ast.walk(ast.parse(source))
                                            if isinstance(node, ast.ImportFrom)}
    assert "pretrain" not in imported and "engine.app.pretrain" not in imported
    assert "engine.app.assets" in imported


def test_every_default_model_has_a_build_entry_and_a_file() -> None:
    assert set(DEFAULT_MODEL_FILES) == set(REGISTRY) == set(DEFAULT_MODELS)
    for name in DEFAULT_MODEL_FILES:
        assert default_model_path(name).exists(), name


def test_a_model_file_of_an_unknown_kind_is_refused() -> None:
    data = checkpoint.to_bytes({"w": np.zeros(3, np.float32)}, {"model": "gan"})
    with pytest.raises(checkpoint.CheckpointError, match="'gan'"):
        model_from_bytes(data)


def test_an_unknown_default_model_says_how_to_build_it() -> None:
    with pytest.raises(ModelUnavailableError, match="python -m engine.app.pretrain nope"):
        load_default_model("nope")


def test_a_drawn_one_is_read_as_one_by_every_default_model(defaults) -> None:
    preprocessed, probabilities = classify(defaults, vertical_one())
    assert preprocessed.final.shape == (28, 28)
    assert {name: int(p.argmax()) for name, p in probabilities.items()} == \
        dict.fromkeys(defaults, 1)


def test_the_default_models_read_test_digits_centred_and_moved(defaults) -> None:
    """Every default model keeps >= 95% on the 1,000 unseen test digits, and >= 90% on the same
    digits moved by up to 3 pixels (drawn digits are rarely centred as MNIST's are; the
    feed-forward defaults read ~50% of these before they trained on moved digits)."""
    split = embedded_split()
    x, y = as_float(split.x_test), split.y_test
    moved = shifted(x, np.random.default_rng(0).integers(0, 7, (len(x), 2)), 3)
    for name, model in defaults.items():
        assert (model.predict_proba(x).argmax(axis=1) == y).mean() >= 0.95, name
        assert (model.predict_proba(moved).argmax(axis=1) == y).mean() >= 0.90, name


# --- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_files(tmp_path_factory) -> dict[str, tuple[Path, int]]:
    """Real files as a user would pass them: {what: (path, the digit in it)}."""
    folder = tmp_path_factory.mktemp("images")
    files = {
        "canvas export": ("canvas.png", image_bytes(mnist_on_canvas(mnist_digit(3))), 3),
        "photo on paper": ("photo.jpg", image_bytes(on_paper(mnist_on_canvas(mnist_digit(7))),
                                                    "JPEG", quality=90), 7),
        "MNIST 28x28": ("mnist.png", image_bytes(mnist_digit(5)), 5),
    }
    out = {}
    for what, (name, data, digit) in files.items():
        (folder / name).write_bytes(data)
        out[what] = (folder / name, digit)
    return out


def test_the_cli_prints_one_json_line_per_image_and_exits_0(image_files, capsys) -> None:
    assert main([str(path) for path, _ in image_files.values()]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(image_files)
    for line, (path, digit) in zip(lines, image_files.values(), strict=True):
        record = json.loads(line)
        assert record["file"] == str(path)
        assert set(record["models"]) == set(DEFAULT_MODELS)
        for name, answer in record["models"].items():
            assert answer["digit"] == digit, (path.name, name)
            assert len(answer["probabilities"]) == 10
            assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4)
            assert answer["digit"] == int(np.argmax(answer["probabilities"]))


def test_the_cli_reports_unreadable_files_after_the_readable_ones(image_files, tmp_path) -> None:
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_bytes(b"shopping list: milk, eggs")
    blank = tmp_path / "blank.png"
    blank.write_bytes(image_bytes(np.zeros((28, 28), np.uint8)))
    good, digit = image_files["canvas export"]
    files = [not_an_image, good, tmp_path / "missing.png", blank]
    result = subprocess.run([sys.executable, "-m", "engine.app.predict", *map(str, files)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(good)]
    assert records[0]["models"]["cnn"]["digit"] == digit
    errors = result.stderr
    assert f"{not_an_image}: That file is not an image" in errors
    assert f"{tmp_path / 'missing.png'}: cannot read the file" in errors
    assert f"{blank}: Draw a digit first" in errors
    assert "Traceback" not in errors

