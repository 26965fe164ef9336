"""Model files: parameters and metadata in one .npz, read without pickle and validated.

Layout: one float array per parameter (its key is the parameter's name) plus `__metadata__`, a
JSON text holding at least {"format": FORMAT_VERSION, "model": "ffnn" | "cnn" | ...}; models
add their architecture, data set and metrics. Files are written with fixed timestamps, so the
same parameters and metadata always give the same bytes, and atomically (temp file + rename).
Reading never unpickles (`allow_pickle=False`); anything unexpected raises `CheckpointError`
with a sentence a user can act on.
"""

from __future__ import annotations

import io
import json
import math
import os
import reprlib
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
# The largest net the hosted limits allow is ~16 MB of float32; this leaves room for history.
MAX_UNPACKED_BYTES = 128 * 2**20
MAX_MEMBERS = 256  # arrays in one file; a model has a few dozen at most
METADATA_KEY = "__metadata__"


class CheckpointError(ValueError):
    """A model file is not readable, not ours, or does not fit the model it claims to be."""


@dataclass(frozen=True)
class Checkpoint:
    """Parameters by name (float arrays) and the metadata dict stored beside them."""

    params: dict[str, np.ndarray]
    metadata: dict[str, Any]


def to_bytes(params: dict[str, np.ndarray], metadata: dict[str, Any]) -> bytes:
    """The .npz file's bytes. metadata must be JSON-serialisable and name the "model"."""
    if "model" not in metadata:
        raise ValueError("checkpoint metadata must say which model it is ('model' key)")
    if METADATA_KEY in params:
        raise ValueError(f"{METADATA_KEY!r} is reserved for the metadata")
    text = json.dumps({"format": FORMAT_VERSION, **metadata}, sort_keys=True)
    members = {METADATA_KEY: np.array(text), **{k: np.asarray(v) for k, v in params.items()}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in sorted(members.items()):
            member = io.BytesIO()
            np.lib.format.write_array(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def save(path: str | Path, params: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
    """Write the checkpoint to path atomically: readers see the old file or the new, never half."""
    write_atomically(path, to_bytes(params, metadata))


def write_atomically(path: str | Path, data: bytes) -> None:
    """Write data to path via a temp file in the same folder, fsync and `os.replace`.

    A crash at any point leaves the previous file whole (at worst a stray `.*.tmp` beside it);
    the fsyncs make the new bytes, then the rename, durable before this returns.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside folder durable (POSIX; Windows cannot open a folder, nor needs to)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself has happened
    finally:
        os.close(handle)


def from_bytes(data: bytes, model: str | None = None) -> Checkpoint:
    """Read and check a checkpoint's bytes; if `model` is given, it must be that kind of model.

    Total: any bytes give a Checkpoint or a CheckpointError, never another exception. Checks:
    a .npz archive of at most MAX_MEMBERS `.npy` members, unpacking to at most
    MAX_UNPACKED_BYTES, no pickled objects, a JSON metadata dict of a known format version,
    every parameter a finite float array.
    """
    if data.startswith(b"\x93NUMPY"):
        raise CheckpointError("This is a single numpy array (.npy), not a model file (.npz).")
    if not data.startswith(b"PK"):
        raise CheckpointError("This is not a model file: a model file is a .npz archive.")
    arrays = _arrays(data)
    metadata = _metadata(arrays.pop(METADATA_KEY, None))
    if model is not None and metadata.get("model") != model:
        raise CheckpointError(f"This file holds a {reprlib.repr(metadata.get('model'))} model, "
                              f"not a {model!r} one.")
    for name, array in arrays.items():
        if array.dtype.kind != "f":
            raise CheckpointError(f"Parameter {name!r} is {array.dtype}, not a float array.")
        if not np.isfinite(array).all():
            raise CheckpointError(f"Parameter {name!r} contains NaN or infinite values.")
    return Checkpoint(arrays, metadata)


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    """Every member of the .npz archive `data` as an array, by name (without `.npy`)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            _check_members(members)
            return {info.filename[:-len(".npy")]: _array(archive.read(info), info.filename)
                    for info in members}
    except CheckpointError:
        raise
    except Exception as error:  # the parsers' failures form no closed set:
        # zipfile, zlib, lzma, bz2 and numpy's header parser raise at least BadZipFile,
        # zlib.error, tokenize.TokenError, RuntimeError (encrypted), NotImplementedError
        # (unknown compression), EOFError, OSError, ValueError and MemoryError on damaged bytes
        # (tests/engine/models/test_checkpoint.py fuzzes them); this block calls nothing else.
        raise CheckpointError(f"This is not a readable model file "
                              f"({type(error).__name__}: {reprlib.repr(str(error))}).") from None


def _check_members(members: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive that is not a flat set of .npy members or unpacks to more than
    MAX_UNPACKED_BYTES: a few kilobytes of compressed zeros can unpack to gigabytes (a "zip
    bomb"). zipfile holds each member to its declared size, so the declared sizes are a bound."""
    names = [info.filename for info in members]
    if len(names) > MAX_MEMBERS:
        raise CheckpointError(f"This file holds {len(names)} arrays, more than any model here "
                              f"(at most {MAX_MEMBERS}).")
    odd = [name for name in names if not name.endswith(".npy")]
    if odd:
        raise CheckpointError(f"This file holds {reprlib.repr(odd[0])}, which is not a numpy "
                              "array (.npy), so it is not a model file.")
    if len(set(names)) < len(names):
        raise CheckpointError("This file holds two arrays of the same name, so it is not a "
                              "model file.")
    unpacked = sum(info.file_size for info in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise CheckpointError(f"This file unpacks to {unpacked / 2**20:,.0f} MB, more than any "
                              f"model here (at most {MAX_UNPACKED_BYTES // 2**20} MB).")


def _array(raw: bytes, name: str) -> np.ndarray:
    """The array stored in one .npy member's bytes, without pickle and without allocating more
    than the bytes it holds (a header may claim any shape)."""
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise CheckpointError(f"{name!r} is a .npy of version {version}, which is not read here.")
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject:
        raise CheckpointError("This file holds pickled Python objects, which are never loaded "
                              "(they can run code). Upload a model saved here.")
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw) - stream.tell() or dtype.itemsize == 0:
        raise CheckpointError(f"{name!r} claims shape {reprlib.repr(shape)} of {dtype}, which "
                              "is not the size of the data it holds.")
    flat = np.frombuffer(raw, dtype, count, offset=stream.tell())
    return flat.reshape(shape, order="F" if fortran_order else "C").copy()


def load(path: str | Path, model: str | None = None) -> Checkpoint:
    """Read and check the checkpoint at path (see `from_bytes`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CheckpointError(f"Cannot read the model file {path}: {error.strerror}.") from None
    return from_bytes(data, model)


def _metadata(stored: np.ndarray | None) -> dict[str, Any]:
    """The metadata dict from its stored 0-d text array."""
    if stored is None or stored.dtype.kind != "U" or stored.ndim != 0:
        raise CheckpointError("This .npz has no Glassbox metadata, so it is not a model saved "
                              "here.")
    try:
        metadata = json.loads(str(stored))
    except (ValueError, RecursionError):  # not JSON, an int of over 4300 digits, too deep
        raise CheckpointError("This model file's metadata is corrupt.") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("format"), int):
        raise CheckpointError("This model file's metadata is corrupt.")
    if metadata["format"] > FORMAT_VERSION:
        raise CheckpointError(f"This model file has format {reprlib.repr(metadata['format'])}, "
                              f"newer than this app reads ({FORMAT_VERSION}). Update the app.")
    return metadata


def check_params(params: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                 dtype: np.dtype | type = np.float32) -> None:
    """Raise CheckpointError unless params has exactly these names, shapes and dtype."""
    missing, extra = sorted(set(shapes) - set(params)), sorted(set(params) - set(shapes))
    if missing or extra:
        raise CheckpointError("The parameters do not fit the architecture: "
                              + "; ".join(filter(None, [
                                  f"missing {', '.join(missing)}" if missing else "",
                                  f"unexpected {', '.join(extra)}" if extra else ""])) + ".")
    for name, shape in shapes.items():
        if params[name].shape != tuple(shape):
            raise CheckpointError(f"Parameter {name!r} has shape {params[name].shape}, but the "
                                  f"architecture needs {tuple(shape)}.")
        if params[name].dtype != dtype:
            raise CheckpointError(f"Parameter {name!r} is {params[name].dtype}, expected "
                                  f"{np.dtype(dtype)}.")


def model_bytes(kind: str, architecture: Any, params: dict[str, Any], **info: Any) -> bytes:
    """A model file (.npz bytes) of a `kind` model; info (data set, metrics, training
    settings...) goes into the metadata beside the architecture's `to_metadata()`, and must stay
    JSON-serialisable."""
    metadata = {"model": kind, "architecture": architecture.to_metadata(), **info}
    return to_bytes({name: np.asarray(value) for name, value in params.items()}, metadata)


def read_model(data: bytes, kind: str, architecture_from_metadata: Callable[[Any], Any]
               ) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """(architecture, params, metadata) from a `kind` model file's bytes.

    architecture_from_metadata raises ValueError for a description it cannot build; the
    architecture's `param_shapes()` then validates the parameters. Raises CheckpointError.
    """
    saved = from_bytes(data, kind)
    try:
        architecture = architecture_from_metadata(saved.metadata.get("architecture", {}))
        shapes = architecture.param_shapes()
    except (ValueError, TypeError, KeyError, OverflowError) as error:
        # ValueError is the contract; the others guard a reader that lets one through
        # (int(1e400) is an OverflowError).
        raise CheckpointError(f"The file's architecture is unusable: "
                              f"{reprlib.repr(str(error))}") from None
    check_params(saved.params, shapes)
    return architecture, saved.params, saved.metadata
