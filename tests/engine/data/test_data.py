"""engine.data.mnist: embedded set, fixed split, minibatches, IDX and npz readers."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data import mnist as data
from engine.data.mnist import DatasetError, embedded_split

# sha256 of the embedded split's test indices (int64 little-endian). If this changes, the test
# digits changed: every pretrained model and benchmark figure would be measured on other digits.
TEST_INDICES_SHA256 = "52fafb43e9ec6151a2d8d517b25c71bdaefd75a2d1d30cb72c39cd33770abb9c"


@pytest.fixture(scope="module")
def embedded() -> tuple[np.ndarray, np.ndarray]:
    return data.load_embedded()


@pytest.fixture(scope="module")
def split() -> data.Split:
    return data.embedded_split()


# --- embedded set and split -----------------------------------------------------------------


def test_embedded_set_is_5000_balanced_uint8_digits(embedded) -> None:
    images, labels = embedded
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    assert images.max() == 255 and images.min() == 0
    # real digits, not blanks: every image has strong ink
    assert (images.reshape(5000, -1).max(axis=1) > 128).all()


def test_split_sizes_and_balance(split) -> None:
    assert split.x_train.shape == (3700, 28, 28)
    assert split.x_val.shape == (300, 28, 28)
    assert split.x_test.shape == (1000, 28, 28)
    assert np.bincount(split.y_test, minlength=10).tolist() == [100] * 10
    assert np.bincount(split.y_val, minlength=10).tolist() == [30] * 10
    assert np.bincount(split.y_train, minlength=10).tolist() == [370] * 10
    assert all(a.dtype == np.uint8 for a in (split.x_train, split.x_val, split.x_test))


def test_split_is_disjoint_complete_and_fixed(embedded, split) -> None:
    images, labels = embedded
    train, val, test = data.split_indices(labels)
    assert len(np.intersect1d(train, val)) == len(np.intersect1d(train, test)) == 0
    assert len(np.intersect1d(val, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(5000))
    assert hashlib.sha256(test.astype("<i8").tobytes()).hexdigest() == TEST_INDICES_SHA256
    assert np.array_equal(split.x_test, images[test]) and np.array_equal(split.y_test, labels[test])
    again = data.embedded_split()
    assert np.array_equal(again.x_test, split.x_test) and np.array_equal(again.x_val, split.x_val)


def test_another_seed_gives_another_split(embedded) -> None:
    _, labels = embedded
    assert not np.array_equal(data.split_indices(labels)[2],
                              data.split_indices(labels, seed=data.SPLIT_SEED + 1)[2])


def test_split_arrays_are_read_only(split) -> None:
    with pytest.raises(ValueError, match="read-only"):
        split.x_train[0, 0, 0] = 1


def test_as_float_is_float32_in_unit_range(split) -> None:
    x = data.as_float(split.x_test[:10])
    assert x.dtype == np.float32 and x.shape == (10, 28, 28)
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.allclose(x * 255, split.x_test[:10])
    assert data.as_float(x) is x  # floats already: unchanged (float64 would keep its precision)
    with pytest.raises(TypeError, match="uint8"):
        data.as_float(split.x_test[:2].astype(np.int32))


def test_as_float_gives_the_bits_of_xlas_division_by_255() -> None:
    """The JAX steps scale pixels inside jit: the same function must give the same numbers."""
    pixels = np.arange(256, dtype=np.uint8)
    on_device = jax.jit(data.as_float)(jnp.asarray(pixels))
    np.testing.assert_array_equal(np.asarray(on_device), data.as_float(pixels))
    np.testing.assert_array_equal(data.as_float(pixels), np.asarray(jnp.asarray(pixels) / 255.0))


# --- minibatches ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 200), batch_size=st.integers(1, 64), seed=st.integers(0, 2**31),
       epoch=st.integers(0, 1000))
def test_minibatches_cover_each_example_once_per_epoch(n, batch_size, seed, epoch) -> None:
    x = np.arange(n) * 10
    y = np.arange(n)
    batches = list(data.minibatches(x, y, batch_size, seed=seed, epoch=epoch, drop_last=False))
    seen = np.concatenate([yb for _, yb in batches])
    assert np.array_equal(np.sort(seen), np.arange(n))
    assert all(np.array_equal(xb, yb * 10) for xb, yb in batches)  # x and y stay paired
    assert all(len(yb) == batch_size for _, yb in batches[:-1])
    if batch_size <= n:
        kept = list(data.minibatches(x, y, batch_size, seed=seed, epoch=epoch))
        assert all(len(yb) == batch_size for _, yb in kept)
        kept_ids = np.concatenate([yb for _, yb in kept])
        assert len(kept_ids) == n - n % batch_size == len(np.unique(kept_ids))
        assert np.array_equal(kept_ids, seen[: len(kept_ids)])  # drop_last only drops the tail


def test_minibatches_are_deterministic_and_reshuffled_each_epoch() -> None:
    x = np.arange(100)

    def order(seed: int, epoch: int) -> np.ndarray:
        return np.concatenate([b for b, _ in data.minibatches(x, x, 10, seed=seed, epoch=epoch)])

    assert np.array_equal(order(0, 3), order(0, 3))
    assert np.array_equal(order(0, 3), data.epoch_permutation(100, 0, 3))
    assert not np.array_equal(order(0, 3), order(0, 4))
    assert not np.array_equal(order(0, 3), order(1, 3))


@pytest.mark.parametrize("batch_size", [0, -1, 11])
def test_minibatches_reject_bad_batch_size(batch_size) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        next(data.minibatches(np.zeros(10), np.zeros(10), batch_size, seed=0, epoch=0))


# --- IDX and npz readers on generated files ------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 00 00 08 ndim, big-endian dims, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_mnist(n_train: int = 12, n_test: int = 5) -> data.Mnist:
    rng = np.random.default_rng(0)
    return data.Mnist(rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                      rng.integers(0, 10, n_train, dtype=np.uint8),
                      rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                      rng.integers(0, 10, n_test, dtype=np.uint8))


def write_idx_folder(folder: Path, mnist: data.Mnist) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip(data.IDX_FILES, (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test),
                      strict=True))
    for key, name in data.IDX_FILES.items():
        (folder / name).write_bytes(gzip.compress(idx_bytes(arrays[key]), mtime=0))
    return folder


def assert_same_mnist(a: data.Mnist, b: data.Mnist) -> None:
    for left, right in zip(a, b, strict=True):
        assert left.dtype == right.dtype and np.array_equal(left, right)


def test_read_idx_round_trips_plain_and_gzipped(tmp_path) -> None:
    images = tiny_mnist().x_train
    (tmp_path / "plain").write_bytes(idx_bytes(images))
    (tmp_path / "zipped.gz").write_bytes(gzip.compress(idx_bytes(images)))
    assert np.array_equal(data.read_idx(tmp_path / "plain"), images)
    assert np.array_equal(data.read_idx(tmp_path / "zipped.gz"), images)


def test_read_idx_folder_round_trips(tmp_path) -> None:
    mnist = tiny_mnist()
    assert_same_mnist(data.read_idx_folder(write_idx_folder(tmp_path, mnist)), mnist)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=3), seed=st.integers(0, 2**32 - 1),
       zipped=st.booleans())
def test_read_idx_round_trips_any_shape(tmp_path_factory, shape, seed, zipped) -> None:
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    content = idx_bytes(array)
    path = tmp_path_factory.mktemp("idx") / "file"
    path.write_bytes(gzip.compress(content) if zipped else content)
    read = data.read_idx(path)
    assert read.dtype == np.uint8 and read.shape == tuple(shape)
    assert np.array_equal(read, array)


GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
LABELS = idx_bytes(np.arange(10, dtype=np.uint8))


@pytest.mark.parametrize(("content", "message"), [
    (b"\x01\x00" + GOOD[2:], "magic"),
    (GOOD[:2] + b"\x0d" + GOOD[3:], "element type"),  # 0x0D = float
    (GOOD[:3] + b"\x05" + GOOD[4:], "dimensions"),
    (GOOD[:10], "truncated header"),
    (GOOD[:-1], "header says"),
    (GOOD + b"\x00", "more"),
    (b"", "magic"),
    (gzip.compress(GOOD)[:-12], "cannot read"),  # gzip stream cut short
    (LABELS[:-3], "header says"),  # a labels file cut short
    (LABELS[:6], "truncated header"),
    (b"\x00\x00\x08\x01\xff\xff\xff\xff", "header claims"),  # 4 GB of labels announced
])
def test_read_idx_rejects_bad_files(tmp_path, content, message) -> None:
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        data.read_idx(path)


def test_read_idx_folder_rejects_mismatched_counts_and_shapes(tmp_path) -> None:
    mnist = tiny_mnist()
    write_idx_folder(tmp_path / "labels", mnist._replace(y_train=mnist.y_train[:-1]))
    with pytest.raises(DatasetError, match="labels"):
        data.read_idx_folder(tmp_path / "labels")
    write_idx_folder(tmp_path / "shape", mnist._replace(x_test=np.zeros((5, 28, 27), np.uint8)))
    with pytest.raises(DatasetError, match="28, 28"):
        data.read_idx_folder(tmp_path / "shape")
    write_idx_folder(tmp_path / "digit", mnist._replace(y_test=np.full(5, 10, np.uint8)))
    with pytest.raises(DatasetError, match="not a digit"):
        data.read_idx_folder(tmp_path / "digit")


def test_read_mnist_npz_round_trips_and_rejects_bad_files(tmp_path) -> None:
    mnist = tiny_mnist()
    np.savez_compressed(tmp_path / "mnist.npz", **mnist._asdict())
    assert_same_mnist(data.read_mnist_npz(tmp_path / "mnist.npz"), mnist)

    np.savez(tmp_path / "missing.npz", x_train=mnist.x_train, y_train=mnist.y_train)
    with pytest.raises(DatasetError, match="missing array"):
        data.read_mnist_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "pickled.npz", **{**mnist._asdict(), "y_test": np.array([{}], object)})
    with pytest.raises(DatasetError, match="not a readable npz"):
        data.read_mnist_npz(tmp_path / "pickled.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="not a readable npz"):
        data.read_mnist_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "float.npz", **{**mnist._asdict(), "x_train": mnist.x_train / 255})
    with pytest.raises(DatasetError, match="uint8"):
        data.read_mnist_npz(tmp_path / "float.npz")


def test_find_full_mnist_from_argument_env_var_or_nowhere(tmp_path, monkeypatch) -> None:
    mnist = tiny_mnist()
    monkeypatch.delenv(data.MNIST_DIR_ENV, raising=False)
    assert data.find_full_mnist() is None
    folder = write_idx_folder(tmp_path / "idx", mnist)
    assert_same_mnist(data.find_full_mnist(folder), mnist)
    monkeypatch.setenv(data.MNIST_DIR_ENV, str(folder))
    assert_same_mnist(data.find_full_mnist(), mnist)

    other = tiny_mnist(n_train=3)
    np.savez(folder / "mnist.npz", **other._asdict())  # the npz is preferred when both are there
    assert_same_mnist(data.find_full_mnist(folder), other)


def test_find_full_mnist_names_what_is_missing(tmp_path) -> None:
    folder = write_idx_folder(tmp_path, tiny_mnist())
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz"):
        data.find_full_mnist(folder)
    with pytest.raises(DatasetError, match="does not exist"):
        data.find_full_mnist(tmp_path / "nowhere")


def test_full_mnist_split_keeps_the_last_5000_training_digits_for_validation() -> None:
    n = data.FULL_VAL_SIZE + 7
    mnist = data.Mnist(np.zeros((n, 28, 28), np.uint8), (np.arange(n) % 10).astype(np.uint8),
                       np.ones((3, 28, 28), np.uint8), np.zeros(3, np.uint8))
    split = data.full_mnist_split(mnist)
    assert len(split.x_train) == 7 and len(split.x_val) == data.FULL_VAL_SIZE
    assert np.array_equal(split.y_val, mnist.y_train[7:])
    assert np.array_equal(split.x_test, mnist.x_test)
    with pytest.raises(DatasetError, match="too few"):
        data.full_mnist_split(tiny_mnist())


# --- the UI's cached loaders ------------------------------------------------------------------


def test_ui_loaders_share_one_dataset_per_folder(tmp_path, monkeypatch) -> None:
    from ui import loaders

    embedded = loaders.load_embedded_dataset()
    assert loaders.load_embedded_dataset() is embedded  # one copy per server, not per session
    assert embedded.split.x_test.shape == (1000, 28, 28)
    monkeypatch.delenv(data.MNIST_DIR_ENV, raising=False)
    assert loaders.load_full_mnist_dataset() is None
    mnist = tiny_mnist(n_train=data.FULL_VAL_SIZE + 10)
    np.savez(tmp_path / "mnist.npz", **mnist._asdict())
    monkeypatch.setenv(data.MNIST_DIR_ENV, str(tmp_path))
    full = loaders.load_full_mnist_dataset()
    assert full is loaders.load_full_mnist_dataset(str(tmp_path))
    assert len(full.split.x_train) == 10 and len(full.split.x_test) == 5


def test_fewer_training_digits_keep_every_class_and_the_held_out_digits():
    split = embedded_split()
    few = split.with_training_digits(200)
    assert len(few.x_train) == len(few.y_train) == 200
    counts = np.bincount(few.y_train, minlength=10)
    share = np.bincount(split.y_train, minlength=10) / len(split.y_train) * 200
    assert np.all(np.abs(counts - share) <= 2), (counts, share)  # evenly spread over the set
    assert few.x_val is split.x_val and few.x_test is split.x_test
    assert split.with_training_digits(0) is split
    with pytest.raises(ValueError, match="between 1 and 3,700"):
        split.with_training_digits(3701)
