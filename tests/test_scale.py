"""Training on full MNIST's size: memory stays bounded (the exact figure is benchmark M2)."""

from __future__ import annotations

import threading

import numpy as np
import psutil
import pytest

from engine import cnn, ffnn
from engine import train as training
from engine.cnn.model import CNNSpec
from engine.data import Mnist, full_mnist_split

# A float32 copy of the 55,000 training digits alone is 172 MB; the run measured 83 MB (CNN)
# and 64 MB (FFNN) of growth, mostly the training digits' uint8 copy on the device (43 MB).
RSS_GROWTH_BOUND_MB = 150


class PeakRss(threading.Thread):
    """This process's peak resident memory (bytes), sampled every few milliseconds until done."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.process, self.peak, self.done = psutil.Process(), 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.done.wait(0.005)


@pytest.fixture(scope="module")
def full_sized_split():
    """Synthetic uint8 digits in full MNIST's numbers: 55,000 / 5,000 / 10,000."""
    rng = np.random.default_rng(0)
    mnist = Mnist(rng.integers(0, 256, (60_000, 28, 28), dtype=np.uint8),
                  rng.integers(0, 10, 60_000, dtype=np.uint8),
                  rng.integers(0, 256, (10_000, 28, 28), dtype=np.uint8),
                  rng.integers(0, 10, 10_000, dtype=np.uint8))
    return full_mnist_split(mnist)


def two_chunks(start_run, split) -> training.Progress:
    """The last event of a run on split stopped after its first two chunks."""
    stop, final = threading.Event(), None
    for count, event in enumerate(start_run(split, stop), start=1):
        final = event
        if count == 2:
            stop.set()
    return final


RUNS = {
    "cnn": lambda split, stop: cnn.training_run(
        cnn.TrainingConfig(CNNSpec((8,)), epochs=1), split, stop=stop),
    "ffnn-jax": lambda split, stop: ffnn.training_run(
        ffnn.TrainingConfig(epochs=1), split, stop=stop),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", list(RUNS))
def test_a_run_on_60000_digits_keeps_memory_bounded(full_sized_split, family):
    two_chunks(RUNS[family], full_sized_split)  # compiles; a second run compiles nothing
    before = psutil.Process().memory_info().rss
    sampler = PeakRss()
    sampler.start()
    try:
        final = two_chunks(RUNS[family], full_sized_split)
    finally:
        sampler.done.set()
        sampler.join()
    assert final.status == "stopped" and final.step < final.total_steps
    assert final.test_accuracy is not None  # evaluated on all 10,000 test digits
    assert (sampler.peak - before) / 2**20 < RSS_GROWTH_BOUND_MB


def test_evaluation_predicts_a_chunk_of_floats_at_a_time_in_order():
    images = np.arange(6_000, dtype=np.int64).astype(np.uint8).repeat(784).reshape(-1, 28, 28)
    seen = []

    def brightest_class(params, x):
        seen.append((len(x), x.dtype))
        return np.rint(x[:, 0, 0] * 255).astype(np.int64) % 10

    labels = training.chunked_labels(brightest_class, None, images)
    np.testing.assert_array_equal(labels, images[:, 0, 0] % 10)
    assert seen == [(training.EVAL_CHUNK, np.float32)] * 2 + [(1_000, np.float32)]
