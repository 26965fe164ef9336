"""MNIST digits: the embedded 5,000-digit set and its one fixed split, full MNIST, minibatches.

The embedded set (`assets/mnist_5k.npz`, 500 digits per class, see assets/MNIST-NOTICE.md) is the
default and works offline. Full MNIST (70,000 digits) is read from a folder holding the four IDX
`.gz` files or a Keras-style `mnist.npz` (`engine.data.datasets` downloads such folders).
Images stay uint8 (n, 28, 28) everywhere they are stored; `as_float` gives a model's float32 view.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

EMBEDDED_PATH = Path(__file__).resolve().parents[2] / "assets" / "mnist_5k.npz"
EMBEDDED_TITLE = "embedded MNIST (5,000 digits)"
N_CLASSES = 10

# The one fixed split of the embedded set (see `embedded_split`). Changing any of these changes
# which digits are test digits, which invalidates every pretrained model and benchmark figure.
SPLIT_SEED = 20240
TEST_PER_CLASS = 100
VAL_PER_CLASS = 30

# Full MNIST: the last FULL_VAL_SIZE digits of the 60,000 training digits are the validation slice.
FULL_VAL_SIZE = 5_000

MNIST_DIR_ENV = "GLASSBOX_MNIST_DIR"

# The four standard file names, the same for MNIST and Fashion-MNIST (their MD5s differ; see
# engine.data.datasets).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
DIGIT_NAMES = tuple(str(digit) for digit in range(10))
KERAS_NPZ = "mnist.npz"

IDX_UBYTE = 0x08
MAX_IDX_ELEMENTS = 100_000_000  # a header claiming more is corrupt (MNIST train is 47 M)


class DatasetError(ValueError):
    """A data file is missing, corrupt, or not what it claims to be. The message says which."""


class Mnist(NamedTuple):
    """Full MNIST as published: uint8 images (n, 28, 28) and uint8 labels (n,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class Split:
    """Train / validation / test digits: uint8 images (n, 28, 28), uint8 labels (n,), read-only.

    The test digits are never trained on and never used to choose settings: that is what the
    validation digits are for.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def with_training_digits(self, count: int) -> Split:
        """This split with only `count` of its training digits, evenly spread over them (every
        class keeps its share); the validation and test digits unchanged. 0: all of them."""
        if not 0 <= count <= len(self.x_train):
            raise ValueError(f"the number of training digits must be between 1 and "
                             f"{len(self.x_train):,} (0: all), got {count}")
        if count in (0, len(self.x_train)):
            return self
        keep = np.linspace(0, len(self.x_train) - 1, count).astype(np.int64)
        return replace(self, x_train=self.x_train[keep], y_train=self.y_train[keep])


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class Dataset:
    """A named split the UI can offer ("embedded", full MNIST, Fashion-MNIST) and the names of
    its 10 classes (label i is class_names[i])."""

    name: str
    split: Split
    class_names: tuple[str, ...] = DIGIT_NAMES


def as_float(images: Any) -> Any:
    """Pixels as floats in [0, 1], same shape: uint8 (0-255) -> float32 (x / 255); a floating
    array passes through unchanged (float64 keeps a test's precision).

    Works on numpy and JAX arrays, traced ones too. Raises TypeError for any other dtype (an
    int array could be 0-255 or 0-1: it is ambiguous).
    """
    if np.issubdtype(images.dtype, np.floating):
        return images
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8 pixels (0-255) or floats in [0, 1], got "
                        f"{images.dtype}")
    # Multiplying by the float32 reciprocal gives the same bits as XLA's x / 255.
    return images.astype(np.float32) * np.float32(1 / 255)


def _read_only(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays, flagged read-only: splits are cached and shared, so nobody may edit them."""
    for array in arrays:
        array.setflags(write=False)
    return list(arrays)


def _check_digits(images: np.ndarray, labels: np.ndarray, what: str) -> None:
    """Raise DatasetError unless images are uint8 (n, 28, 28) and labels uint8 (n,) in 0..9."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(f"{what}: expected uint8 images (n, 28, 28), got "
                           f"{images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.shape != (len(images),):
        raise DatasetError(f"{what}: expected {len(images)} uint8 labels, got "
                           f"{labels.dtype} {labels.shape}")
    if labels.size and labels.max() >= N_CLASSES:
        raise DatasetError(f"{what}: label {labels.max()} is not a digit")


# --- embedded set ---------------------------------------------------------------------------


def load_embedded() -> tuple[np.ndarray, np.ndarray]:
    """The embedded digits: uint8 images (5000, 28, 28) and uint8 labels (5000,)."""
    with np.load(EMBEDDED_PATH, allow_pickle=False) as archive:
        images, labels = archive["x"], archive["y"]
    _check_digits(images, labels, str(EMBEDDED_PATH))
    return images, labels


def split_indices(
    labels: np.ndarray, *, seed: int = SPLIT_SEED, test_per_class: int = TEST_PER_CLASS,
    val_per_class: int = VAL_PER_CLASS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted (train, val, test) indices into labels (n,), stratified by class.

    For each class c, the indices of its digits (ascending) are shuffled by
    `np.random.default_rng([seed, c]).permutation`; the first `test_per_class` are test, the next
    `val_per_class` validation, the rest train.
    """
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in range(N_CLASSES):
        members = np.flatnonzero(labels == c)
        if len(members) <= test_per_class + val_per_class:
            raise DatasetError(f"only {len(members)} digits of class {c}: too few to split")
        shuffled = np.random.default_rng([seed, c]).permutation(members)
        cut = test_per_class + val_per_class
        for part, chosen in zip(parts, (shuffled[cut:], shuffled[test_per_class:cut],
                                        shuffled[:test_per_class]), strict=True):
            part.append(chosen)
    train, val, test = (np.sort(np.concatenate(part)) for part in parts)
    return train, val, test


def embedded_split() -> Split:
    """The one fixed split of the embedded set, the same on every machine.

    Test: 100 digits per class (1,000), validation: 30 per class (300), train: the other 3,700
    (370 per class). Chosen per class with `np.random.default_rng([SPLIT_SEED, class])`, see
    `split_indices`; a test pins a fingerprint of the test indices so it cannot drift.
    """
    images, labels = load_embedded()
    train, val, test = split_indices(labels)
    return Split(*_read_only(images[train], labels[train], images[val], labels[val],
                             images[test], labels[test]))


def embedded_dataset() -> Dataset:
    """The embedded set under its fixed split, named for the UI."""
    return Dataset(EMBEDDED_TITLE, embedded_split())


# --- minibatches ----------------------------------------------------------------------------


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order (n,) int64 of epoch `epoch`: the same for the same (n, seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def minibatches(x: np.ndarray, y: np.ndarray, batch_size: int, *, seed: int, epoch: int,
                drop_last: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x[idx], y[idx]) batches of one epoch in `epoch_permutation` order.

    x: (n, ...), y: (n, ...). Every example appears at most once per epoch. With drop_last (the
    default, for training) the last n % batch_size examples of the shuffled order are skipped, so
    every batch has the same shape (one compiled JAX step) and, as the order changes every epoch,
    no example is left out for good; with drop_last=False a last, smaller batch carries them.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    if batch_size < 1 or (drop_last and batch_size > len(x)):
        raise ValueError(f"batch_size must be between 1 and {len(x)}, got {batch_size}")
    order = epoch_permutation(len(x), seed, epoch)
    stop = len(x) - len(x) % batch_size if drop_last else len(x)
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]


# --- full MNIST: readers ----------------------------------------------------------------------


def _open_maybe_gzip(path: Path) -> BinaryIO:
    """A binary reader over path, decompressing if it starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes: (d0,) labels or (d0, d1, d2) images.

    Raises DatasetError on a bad magic number, an unsupported element type, a truncated or
    over-long body, or a broken gzip stream.
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as stream:
            magic = stream.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0":
                raise DatasetError(f"{path.name}: not an IDX file (bad magic number)")
            if magic[2] != IDX_UBYTE:
                raise DatasetError(f"{path.name}: element type 0x{magic[2]:02x} is not "
                                   "unsigned byte, which is all MNIST uses")
            ndim = magic[3]
            if not 1 <= ndim <= 3:
                raise DatasetError(f"{path.name}: {ndim} dimensions; MNIST has 1 or 3")
            header = stream.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise DatasetError(f"{path.name}: truncated header")
            shape = tuple(int(d) for d in np.frombuffer(header, dtype=">u4"))
            size = int(np.prod(shape, dtype=np.int64))
            if size > MAX_IDX_ELEMENTS:
                raise DatasetError(f"{path.name}: header claims {size:,} bytes of data")
            body = stream.read(size + 1)  # one more than expected reveals trailing bytes
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path.name}: cannot read ({exc})") from exc
    if len(body) != size:
        raise DatasetError(f"{path.name}: header says {shape} = {size:,} bytes, "
                           f"file has {'more' if len(body) > size else len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def read_idx_folder(folder: Path | str) -> Mnist:
    """Full MNIST (or Fashion-MNIST) from the four standard IDX `.gz` files in folder;
    DatasetError if one is bad."""
    folder = Path(folder)
    arrays = {key: read_idx(folder / name) for key, name in IDX_FILES.items()}
    mnist = Mnist(arrays["train_images"], arrays["train_labels"],
                  arrays["test_images"], arrays["test_labels"])
    _check_mnist(mnist, str(folder))
    return mnist


def read_mnist_npz(path: Path | str) -> Mnist:
    """Full MNIST from a Keras-style npz (x_train, y_train, x_test, y_test), no pickles allowed."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            mnist = Mnist(*(archive[key] for key in Mnist._fields))
    except KeyError as exc:
        raise DatasetError(f"{path.name}: missing array {exc}") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path.name}: not a readable npz ({exc})") from exc
    _check_mnist(mnist, path.name)
    return mnist


def _check_mnist(mnist: Mnist, what: str) -> None:
    """Raise DatasetError unless each half is digits with one label per image."""
    _check_digits(mnist.x_train, mnist.y_train, f"{what} (train)")
    _check_digits(mnist.x_test, mnist.y_test, f"{what} (test)")


def find_full_mnist(folder: Path | str | None = None) -> Mnist | None:
    """Full MNIST from folder (or env GLASSBOX_MNIST_DIR when None), or None if neither is set.

    The folder may hold `mnist.npz` (used first) or the four IDX `.gz` files. A folder that is
    set but holds neither, or only some of the IDX files, raises DatasetError naming what is
    missing.
    """
    if folder is None:
        folder = os.environ.get(MNIST_DIR_ENV) or None
        if folder is None:
            return None
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"MNIST folder {folder} does not exist")
    if (folder / KERAS_NPZ).is_file():
        return read_mnist_npz(folder / KERAS_NPZ)
    missing = [name for name in IDX_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"MNIST folder {folder} has no {KERAS_NPZ} and lacks "
                           + ", ".join(missing))
    return read_idx_folder(folder)


def full_mnist_split(mnist: Mnist) -> Split:
    """Full MNIST's split: train = the first 55,000 training digits, validation = the last 5,000,
    test = the 10,000 published test digits."""
    if len(mnist.x_train) <= FULL_VAL_SIZE:
        raise DatasetError(f"only {len(mnist.x_train)} training digits: too few to split")
    cut = len(mnist.x_train) - FULL_VAL_SIZE
    return Split(*_read_only(mnist.x_train[:cut], mnist.y_train[:cut], mnist.x_train[cut:],
                             mnist.y_train[cut:], mnist.x_test, mnist.y_test))
