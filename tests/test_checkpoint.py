"""Model files round-trip, and every kind of bad file is refused with a specific error."""

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine import checkpoint, ffnn
from engine.checkpoint import CheckpointError

ARCH = ffnn.Architecture((12, 6), "tanh", "xavier")


def model_file(params=None, **info) -> bytes:
    return ffnn.checkpoint_bytes(ARCH, params or ffnn.init_params(ARCH, 1), **info)


def test_round_trip_keeps_parameters_architecture_and_metadata(tmp_path: Path):
    params = ffnn.init_params(ARCH, 1)
    path = tmp_path / "models" / "m.npz"
    checkpoint.save(path, params, {"model": "ffnn", "architecture": ARCH.to_metadata(),
                                   "metrics": {"test_accuracy": 0.9}})
    arch, loaded, meta = ffnn.read_checkpoint(path.read_bytes())
    assert arch == ARCH
    assert meta["metrics"] == {"test_accuracy": 0.9} and meta["format"] == 1
    for name in params:
        np.testing.assert_array_equal(loaded[name], params[name])
        assert loaded[name].dtype == np.float32
    assert [p.name for p in path.parent.iterdir()] == ["m.npz"]  # no temp file left behind


def test_same_model_same_bytes():
    assert model_file(dataset="embedded") == model_file(dataset="embedded")


def test_saving_replaces_atomically(tmp_path: Path):
    path = tmp_path / "m.npz"
    checkpoint.save(path, {"w": np.zeros(2, np.float32)}, {"model": "x"})
    checkpoint.save(path, {"w": np.ones(2, np.float32)}, {"model": "x"})
    np.testing.assert_array_equal(checkpoint.load(path).params["w"], [1, 1])


def rewrite(data: bytes, change) -> bytes:
    """The archive with its arrays passed through change(dict) and written back with savez."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    change(arrays)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def with_nan(arrays):
    arrays["w1"] = arrays["w1"].copy()
    arrays["w1"][0, 0] = np.nan


def with_object_array(arrays):
    arrays["w1"] = np.array([{"evil": 1}, None], dtype=object)


BAD_FILES = {
    "garbage bytes": (lambda: b"\x00\x01 not a zip at all", "not a model file"),
    "truncated": (lambda: model_file()[:200], "not a readable model file"),
    "a plain .npy": (lambda: _npy(np.zeros(3)), "single numpy array"),
    "a pickle": (lambda: pickle.dumps({"w0": np.zeros(3)}), "not a model file"),
    "object array": (lambda: rewrite(model_file(), with_object_array), "pickled"),
    "NaN weight": (lambda: rewrite(model_file(), with_nan), "NaN"),
    "missing key": (lambda: rewrite(model_file(), lambda a: a.pop("b1")), "missing b1"),
    "extra key": (lambda: rewrite(model_file(), lambda a: a.update(z=np.zeros(1, np.float32))),
                  "unexpected z"),
    "wrong shape": (lambda: rewrite(model_file(), lambda a: a.update(
        w0=np.zeros((784, 13), np.float32))), "shape"),
    "wrong dtype": (lambda: rewrite(model_file(), lambda a: a.update(
        b0=np.zeros(12, np.float64))), "float64"),
    "integer weights": (lambda: rewrite(model_file(), lambda a: a.update(
        b0=np.zeros(12, np.int64))), "not a float array"),
    "no metadata": (lambda: rewrite(model_file(), lambda a: a.pop("__metadata__")),
                    "no Glassbox metadata"),
    "corrupt metadata": (lambda: rewrite(model_file(), lambda a: a.update(
        __metadata__=np.array("{not json"))), "corrupt"),
    "another model": (lambda: checkpoint.to_bytes({"w": np.zeros(1, np.float32)},
                                                  {"model": "cnn"}), "'cnn' model"),
    "bad architecture": (lambda: checkpoint.to_bytes(
        {"w0": np.zeros(1, np.float32)}, {"model": "ffnn", "architecture": {"hidden": "x"}}),
        "architecture"),
    "future format": (lambda: rewrite(model_file(), lambda a: a.update(
        __metadata__=np.array('{"format": 99, "model": "ffnn"}'))), "newer"),
}


def _npy(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_are_refused_with_a_clear_reason(case):
    make, reason = BAD_FILES[case]
    with pytest.raises(CheckpointError, match=reason):
        ffnn.read_checkpoint(make())


def test_a_pickle_inside_the_archive_is_never_unpickled(monkeypatch):
    data = rewrite(model_file(), with_object_array)
    assert zipfile.is_zipfile(io.BytesIO(data))

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    with pytest.raises(CheckpointError):
        ffnn.read_checkpoint(data)


def test_missing_file_is_a_checkpoint_error(tmp_path: Path):
    with pytest.raises(CheckpointError, match="Cannot read"):
        checkpoint.load(tmp_path / "nope.npz")
