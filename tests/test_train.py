"""The shared training loop: it learns, reports, stops when told, and survives divergence."""

import threading

import numpy as np
import pytest

from engine import ffnn
from engine.data import Split, as_float, embedded_split
from engine.train import Schedule, confusion_matrix, divergence, epoch_chunks


@pytest.fixture(scope="module")
def small_split() -> Split:
    """400 training digits, 100 validation, 200 test (every class: the split is sorted by class,
    so take evenly spaced ones): enough to see learning in a second."""
    s = embedded_split()
    return Split(s.x_train[::9][:400], s.y_train[::9][:400], s.x_val[::3], s.y_val[::3],
                 s.x_test[::5], s.y_test[::5])


def config(**changes) -> ffnn.TrainingConfig:
    base = dict(arch=ffnn.Architecture((32,)), batch_size=50, epochs=3, learning_rate=3e-3)
    return ffnn.TrainingConfig(**{**base, **changes})


@pytest.mark.parametrize("backend", ["jax", "autodiff"])
def test_a_short_run_lowers_the_loss_and_reports_progress(small_split, backend):
    events = list(ffnn.training_run(config(backend=backend), small_split))
    final = events[-1]
    assert final.status == "finished" and final.done
    assert all(e.status == "running" for e in events[:-1])
    assert [e.step for e in events] == sorted(e.step for e in events)
    assert final.step == final.total_steps == 3 * (400 // 50)
    losses = final.history.losses
    assert len(losses) == final.total_steps
    assert np.mean(losses[-8:]) < 0.6 * np.mean(losses[:8])
    assert final.test_accuracy > 0.6 and final.val_accuracy > 0.6
    assert final.snapshot.weights.shape == (32, 28, 28)
    assert set(final.params) == {"w0", "b0", "w1", "b1"}
    assert all(isinstance(v, np.ndarray) for v in final.params.values())


def test_both_backends_train_to_nearly_the_same_model(small_split):
    """Same data order, same init, same math: the two runs differ only by float rounding."""
    jax_run = list(ffnn.training_run(config(backend="jax", epochs=1), small_split))[-1]
    ours = list(ffnn.training_run(config(backend="autodiff", epochs=1), small_split))[-1]
    np.testing.assert_allclose(jax_run.history.losses, ours.history.losses, rtol=1e-3)
    for name in jax_run.params:
        np.testing.assert_allclose(jax_run.params[name], ours.params[name], atol=1e-4)


@pytest.mark.parametrize("backend", ["jax", "autodiff"])
def test_divergence_stops_the_run_and_keeps_finite_parameters(small_split, backend):
    run = config(backend=backend, optimizer="sgd", learning_rate=1e4, epochs=5)
    final = list(ffnn.training_run(run, small_split))[-1]
    assert final.status == "diverged"
    assert "learning rate" in final.message
    assert final.step < final.total_steps
    assert all(np.isfinite(v).all() for v in final.params.values())
    assert np.isfinite(final.history.losses).all()


def test_stop_between_chunks(small_split):
    stop = threading.Event()
    events = []
    for event in ffnn.training_run(config(epochs=20), small_split, stop=stop):
        events.append(event)
        stop.set()
    assert [e.status for e in events] == ["running", "stopped"]
    assert events[-1].step == events[0].step
    assert "Stopped" in events[-1].message
    assert events[-1].params is not None


def test_stop_before_the_first_step_returns_the_initial_parameters(small_split):
    stop = threading.Event()
    stop.set()
    run = config()
    (final,) = ffnn.training_run(run, small_split, stop=stop)
    assert final.status == "stopped" and final.step == 0
    for name, value in ffnn.init_params(run.arch, run.seed).items():
        np.testing.assert_array_equal(final.params[name], value)


def test_epoch_chunks_cover_each_digit_at_most_once_in_near_equal_chunks():
    chunks = epoch_chunks(1000, Schedule(epochs=1, batch_size=30, chunk_steps=7), epoch=2)
    assert {len(c) for c in chunks} <= {6, 7}
    indices = np.concatenate(chunks).ravel()
    assert len(indices) == 33 * 30 and len(set(indices.tolist())) == len(indices)
    assert not np.array_equal(indices, np.concatenate(
        epoch_chunks(1000, Schedule(epochs=1, batch_size=30, chunk_steps=7), epoch=3)).ravel())


def test_epoch_chunks_prefer_equal_lengths_when_a_few_more_chunks_give_them():
    chunks = epoch_chunks(57 * 64, Schedule(epochs=1, batch_size=64, chunk_steps=38), epoch=0)
    assert [len(c) for c in chunks] == [19, 19, 19]


def test_impossible_schedules_are_refused(small_split):
    with pytest.raises(ValueError, match="batch size"):
        next(ffnn.training_run(config(batch_size=401), small_split))


def test_a_nan_loss_counts_as_divergence_even_below_the_blowup_limit():
    params = {"w": np.ones(2)}
    assert "NaN" in divergence(np.array([1.0, np.nan]), 2, params, 100.0)
    assert "NaN" in divergence(np.array([1.0]), 2, params, 100.0)  # the stepper gave up early
    assert "blew up" in divergence(np.array([1.0, 1e3]), 2, params, 100.0)
    assert "parameters" in divergence(np.array([1.0, 2.0]), 2, {"w": np.array([np.inf])}, 100.0)
    assert divergence(np.array([1.0, 2.0]), 2, params, 100.0) == ""


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])


def test_twin_check_runs_at_each_evaluation(small_split):
    x, y = as_float(small_split.x_val[:16]), small_split.y_val[:16]
    events = list(ffnn.training_run(config(epochs=1), small_split, evals_per_epoch=1,
                                    twin_batch=(x, y)))
    twin = events[-1].snapshot.twin
    assert [d.layer for d in twin] == ["layer 1", "layer 2"]
    assert all(d.max_rel < 1e-4 for d in twin)
