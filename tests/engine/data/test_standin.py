"""The full-MNIST stand-in: distorted copies of the embedded training digits only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.data import mnist as data
from engine.data import standin


@pytest.fixture(scope="module")
def split() -> data.Split:
    return data.embedded_split()


def test_the_stand_in_has_full_mnists_shapes_and_keeps_the_real_test_digits(split):
    mnist = standin.standin_mnist(split, size=50)
    assert mnist.x_train.shape == (50, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.y_train.shape == (50,) and mnist.y_train.dtype == np.uint8
    assert mnist.x_test is split.x_test and mnist.y_test is split.y_test


def test_the_stand_in_data_set_is_named_and_split_as_full_mnist(split):
    dataset = standin.standin_dataset(size=5_010)
    assert dataset.name.startswith("stand-in: 5,010 distorted copies of the 3,700 embedded")
    assert len(dataset.split.x_train) == 10 and len(dataset.split.x_val) == data.FULL_VAL_SIZE
    np.testing.assert_array_equal(dataset.split.x_test, split.x_test)


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others(split):
    first, again = (standin.standin_mnist(split, size=40, seed=7) for _ in range(2))
    other = standin.standin_mnist(split, size=40, seed=8)
    assert first.x_train.tobytes() == again.x_train.tobytes()
    assert np.array_equal(first.y_train, again.y_train)
    assert first.x_train.tobytes() != other.x_train.tobytes()


def test_test_and_validation_digits_are_never_used(split):
    blank = np.zeros_like(split.x_train)
    blank.setflags(write=False)
    only_test_ink = dataclasses.replace(split, x_train=blank)
    assert standin.standin_mnist(only_test_ink, size=300).x_train.max() == 0


def test_without_distortion_each_copy_is_its_training_digit_with_its_label(split):
    sources = standin.standin_sources(len(split.x_train), 200, seed=0)
    mnist = standin.standin_mnist(split, size=200, alpha=0.0, max_shift=0.0)
    assert np.array_equal(mnist.x_train, split.x_train[sources])
    assert np.array_equal(mnist.y_train, split.y_train[sources])


def test_every_training_digit_is_copied_as_often_as_the_others():
    counts = np.bincount(standin.standin_sources(3_700, 60_000), minlength=3_700)
    assert counts.min() == 60_000 // 3_700 and counts.max() == 60_000 // 3_700 + 1


def test_blur_matches_numpy_convolve_row_then_column():
    fields = np.random.default_rng(0).uniform(-1, 1, (2, 28, 28)).astype(np.float32)
    kernel = standin.gaussian_kernel(4.0)
    along_w = np.apply_along_axis(np.convolve, 2, fields, kernel, "same")
    expected = np.apply_along_axis(np.convolve, 1, along_w, kernel, "same")
    np.testing.assert_allclose(standin.blurred(fields, 4.0), expected, atol=1e-6)


def test_bilinear_sampling_moves_by_whole_pixels_and_averages_halfway(split):
    images = split.x_train[:3]
    zero = np.zeros(images.shape, np.float32)
    np.testing.assert_array_equal(standin.bilinear_sample(images, zero, zero), images)
    down = standin.bilinear_sample(images, zero + 2, zero)  # each pixel reads two rows below
    np.testing.assert_array_equal(down[:, :-2], images[:, 2:])
    np.testing.assert_array_equal(down[:, -2:], 0)  # read from outside: background
    halfway = standin.bilinear_sample(images, zero, zero - 0.5)
    expected = (images[:, :, 1:].astype(np.float32) + images[:, :, :-1]) / 2
    np.testing.assert_allclose(halfway[:, :, 1:], expected)


def test_a_distorted_digit_still_reads_as_its_label(split, defaults):
    mnist = standin.standin_mnist(split, size=300, seed=1)
    labels = defaults["cnn"].predict_proba(data.as_float(mnist.x_train)).argmax(axis=1)
    assert np.mean(labels == mnist.y_train) >= 0.85  # measured 0.94 on 1,000
    assert not np.array_equal(mnist.x_train, split.x_train[
        standin.standin_sources(len(split.x_train), 300, seed=1)])  # they are distorted


def test_an_empty_stand_in_is_refused(split):
    with pytest.raises(ValueError, match="at least one digit"):
        standin.standin_mnist(split, size=0)
