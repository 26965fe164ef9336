"""Model files round-trip, and every kind of bad file is refused with a specific error."""

import io
import json
import pickle
import struct
import warnings
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import cnn, ffnn
from engine.models import checkpoint
from engine.models.checkpoint import CheckpointError

ARCH = ffnn.Architecture((12, 6), "tanh", "xavier")


def model_file(params=None, **info) -> bytes:
    return ffnn.checkpoint_bytes(ARCH, params or ffnn.init_params(jax.random.key(1), ARCH), **info)


def test_round_trip_keeps_parameters_architecture_and_metadata(tmp_path: Path):
    params = ffnn.init_params(jax.random.key(1), ARCH)
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


# --- totality: any bytes give a Checkpoint or a CheckpointError -------------------------------

REAL_FILES = sorted((ROOT / "assets" / "models").glob("*.npz"))
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_total(data: bytes) -> None:
    """Every reader of model files answers `data` with a result or a CheckpointError that says
    something; any other exception fails the test."""
    for read in (checkpoint.from_bytes, ffnn.read_checkpoint, cnn.read_checkpoint):
        try:
            read(data)
        except CheckpointError as error:
            assert str(error).strip(), read


def zip_of(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression) as archive:
        warnings.simplefilter("ignore")  # duplicate names are wanted here
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def npy_with_header(header: dict | str, payload: bytes = b"", version: int = 1) -> bytes:
    """A .npy member with any header (a dict written as numpy would, or raw text)."""
    text = header if isinstance(header, str) else repr(header)
    raw = text.encode("latin-1", "replace") + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(raw))
    return b"\x93NUMPY" + bytes([version, 0]) + size + raw + payload


def metadata_npy(text: str) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, np.array(text))
    return out.getvalue()


def damaged_deflate() -> bytes:
    """A deflated member whose first block header (just after the 36-byte local header with
    its 6-byte name) is a reserved block type."""
    data = bytearray(zip_of([("w0.npy", bytes(range(256)) * 40)], zipfile.ZIP_DEFLATED))
    data[36] = 0xFF
    return bytes(data)


GOOD_META = '{"format": 1, "model": "ffnn"}'
CRAFTED = {  # each escaped from_bytes/read_checkpoint with another exception type before
    "a member that is not .npy": zip_of([("__metadata__.npy", metadata_npy(GOOD_META)),
                                         ("w0.txt", b"hello")]),
    "raw metadata": zip_of([("__metadata__", b"{}")]),
    "a damaged deflate stream": damaged_deflate(),
    "an unparseable header": zip_of([("w0.npy", npy_with_header("{'descr': '<f4', ("))]),
    "deep metadata JSON": zip_of([("__metadata__.npy", metadata_npy("[" * 100_000))]),
    "a 5000-digit number": zip_of([("__metadata__.npy", metadata_npy(
        '{"format": 1, "model": "ffnn", "n": ' + "9" * 5000 + "}"))]),
    "an infinite layer width": checkpoint.to_bytes({}, {"model": "ffnn", "architecture": {
        "hidden": [float("inf")], "activation": "relu"}}),
    "an infinite filter count": checkpoint.to_bytes({}, {"model": "cnn", "architecture": {
        "filters": [float("inf")], "kernel_size": 3, "pool": "max", "padding": "same",
        "dropout": 0}}),
    # and each of these is refused with a reason of its own
    "a huge claimed shape": zip_of([("w0.npy", npy_with_header(
        {"descr": "<f4", "fortran_order": False, "shape": (2**40, 2**40)}, bytes(16)))]),
    "a zero-size dtype": zip_of([("w0.npy", npy_with_header(
        {"descr": "V0", "fortran_order": False, "shape": (2**62,)}))]),
    "duplicate members": zip_of([("__metadata__.npy", metadata_npy(GOOD_META))] * 2),
    "metadata that is a list": zip_of([("__metadata__.npy", metadata_npy("[1, 2]"))]),
    "a nested archive": zip_of([("w0.npy", REAL_FILES[0].read_bytes())]),
    "a directory": zip_of([("w0/", b"")]),
    "many members": zip_of([(f"w{i}.npy", b"") for i in range(checkpoint.MAX_MEMBERS + 1)]),
    "fortran order": zip_of([("__metadata__.npy", metadata_npy(GOOD_META)), ("w0.npy",
        npy_with_header({"descr": "<f4", "fortran_order": True, "shape": (2, 3)}, bytes(24)))]),
    "an object dtype in a header": zip_of([("w0.npy", npy_with_header(
        {"descr": "|O", "fortran_order": False, "shape": (1,)}, b"\x80\x04N."))]),
    "a .npy of version 3": zip_of([("w0.npy", npy_with_header("{}", version=3))]),
    "lzma members": zip_of([("w0.npy", b"x" * 100)], zipfile.ZIP_LZMA)[:80] + b"\0" * 40,
}


def zip64_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, archive.open(name, "w", force_zip64=True) as f:
        f.write(data)
    return buffer.getvalue()


def patched(data: bytes, field: dict[bytes, int], value: bytes, *, flag: bool = False) -> bytes:
    """data with `value` written (or, if flag, OR-ed) at offset field[signature] after every
    local (PK\x03\x04) and central (PK\x01\x02) header."""
    out = bytearray(data)
    for signature, offset in field.items():
        start = out.find(signature)
        while start != -1:
            at = start + offset
            old = out[at:at + len(value)]
            new = bytes(a | b for a, b in zip(old, value, strict=True)) if flag else value
            out[at:at + len(value)] = new
            start = out.find(signature, start + 1)
    return bytes(out)


FLAGS = {b"PK\x03\x04": 6, b"PK\x01\x02": 8}
CRC = {b"PK\x03\x04": 14, b"PK\x01\x02": 16}
CRAFTED |= {
    "an encrypted flag": patched(REAL_FILES[0].read_bytes(), FLAGS, b"\x01\x00", flag=True),
    "a bad CRC": patched(REAL_FILES[0].read_bytes(), CRC, b"\xde\xad\xbe\xef"),
    "a name that is not UTF-8": patched(zip_of([("\xff\xfe.npy", b"")]), FLAGS, b"\x00\x08",
                                        flag=True),
    "zip64 members": zip64_of("__metadata__.npy", metadata_npy("[" * 3)),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_files_give_a_checkpoint_error(case):
    assert_total(CRAFTED[case])
    with pytest.raises(CheckpointError):
        ffnn.read_checkpoint(CRAFTED[case])


def test_a_fortran_order_array_reads_as_numpy_reads_it():
    array = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    out = io.BytesIO()
    np.lib.format.write_array(out, array)
    data = zip_of([("__metadata__.npy", metadata_npy(GOOD_META)), ("w0.npy", out.getvalue())])
    np.testing.assert_array_equal(checkpoint.from_bytes(data).params["w0"], array)


@st.composite
def mutated_real_files(draw) -> bytes:
    """A committed model file with a few bytes flipped, inserted or deleted, or cut short."""
    data = bytearray(draw(st.sampled_from(REAL_FILES)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        if len(data) <= 2:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if edit == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        else:
            del data[max(at, 2):]
    return bytes(data)


@given(mutated_real_files())
@FUZZ
def test_mutated_model_files_give_a_checkpoint_or_a_checkpoint_error(data):
    assert_total(data)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)
ARCH_KEYS = ["hidden", "activation", "init", "filters", "kernel_size", "pool", "padding",
             "dropout"]
HEADERS = st.one_of(
    st.fixed_dictionaries({
        "descr": st.sampled_from(["<f4", ">f8", "<f2", "|O", "<U3", "V8", "<c8", "|b1", "<i8",
                                  "[('a', '<f4')]", "bogus"]) | st.text(max_size=6),
        "fortran_order": st.booleans() | JSON,
        "shape": st.lists(st.integers(-2, 2**33), max_size=3).map(tuple) | JSON}),
    st.text(max_size=40))
MEMBER_NAMES = st.sampled_from(["__metadata__.npy", "w0.npy", "b0.npy", "w1.npy", "x",
                                "a/b.npy", ".npy", "__metadata__"]) | st.text(min_size=1,
                                                                                max_size=6)


@st.composite
def members(draw) -> tuple[str, bytes]:
    """One archive member: a real array, a crafted header, metadata JSON, or noise."""
    name = draw(MEMBER_NAMES)
    kind = draw(st.sampled_from(["array", "header", "metadata", "noise"]))
    if kind == "array":
        out = io.BytesIO()
        np.lib.format.write_array(out, draw(st.sampled_from([
            np.zeros((784, 8), np.float32), np.ones(8, np.float32), np.array([np.nan]),
            np.zeros(3, np.int32), np.array("text")])))
        data = out.getvalue()
    elif kind == "header":
        data = npy_with_header(draw(HEADERS), draw(st.binary(max_size=64)),
                               draw(st.sampled_from([1, 2])))
    elif kind == "metadata":
        meta = draw(st.dictionaries(st.sampled_from(["format", "model", "architecture"]), JSON)
                    | JSON)
        if draw(st.booleans()) and isinstance(meta, dict):
            meta |= {"format": 1, "model": draw(st.sampled_from(["ffnn", "cnn"])),
                     "architecture": draw(st.dictionaries(st.sampled_from(ARCH_KEYS), JSON))}
        data = metadata_npy(json.dumps(meta))
    else:
        data = draw(st.binary(max_size=64))
    return name, data


@given(st.lists(members(), max_size=5),
       st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                        zipfile.ZIP_LZMA]),
       st.integers(0, 10_000))
@FUZZ
def test_crafted_archives_give_a_checkpoint_or_a_checkpoint_error(parts, compression, cut):
    data = zip_of(parts, compression)
    assert_total(data)
    assert_total(data[:cut])


@given(st.dictionaries(st.sampled_from(ARCH_KEYS), JSON) | JSON, st.sampled_from(["ffnn", "cnn"]))
@FUZZ
def test_any_architecture_in_the_metadata_gives_a_model_or_a_checkpoint_error(arch, kind):
    shapes = [(784, 8), (8,), (8, 10), (10,)]
    params = {f"{n}{i}": np.zeros(s, np.float32) for i, (n, s) in enumerate(
        zip("wbwb", shapes, strict=True))}
    assert_total(checkpoint.to_bytes(params, {"model": kind, "architecture": arch}))
