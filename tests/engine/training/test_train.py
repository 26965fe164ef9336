"""The shared training loop: it learns, reports, stops when told, and survives divergence."""

import math
import threading

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ffnn
from engine.data.mnist import Split, as_float, embedded_split
from engine.training.loop import (
    MAX_CHUNK_STEPS,
    Schedule,
    chunk_steps,
    confusion_matrix,
    divergence,
    epoch_chunks,
    seed_key,
    shifted,
    thinned,
)


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
    assert len(final.history.snapshots) == len(final.history.eval_steps) >= 3
    assert final.history.snapshot_steps == final.history.eval_steps
    assert set(final.params) == {"w0", "b0", "w1", "b1"}
    assert all(isinstance(v, np.ndarray) for v in final.params.values())
    assert all(e.model is None for e in events[:-1])


def test_the_last_event_carries_a_ready_usable_model(small_split):
    final = list(ffnn.training_run(config(epochs=1), small_split, dataset="tiny"))[-1]
    model = final.model
    assert model.kind == "ffnn" and model.architecture == ffnn.Architecture((32,))
    assert model.params is final.params and model.usable
    assert model.metadata["dataset"] == "tiny" and model.metadata["status"] == "finished"
    assert model.metadata["training"] == config(epochs=1).to_metadata()
    assert model.metadata["metrics"] == {"test_accuracy": final.test_accuracy,
                                         "val_accuracy": final.val_accuracy}
    assert model.metadata["steps"] == final.step
    images = as_float(small_split.x_test[:5])
    np.testing.assert_allclose(model.predict_proba(images), ffnn.predict_proba(
        final.params, images, arch=model.architecture), rtol=1e-6)


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
    assert not final.model.usable  # the sketch lab must not take it


def test_a_learning_rate_of_10_with_sgd_still_counts_as_diverged(small_split):
    final = list(ffnn.training_run(config(optimizer="sgd", learning_rate=10.0, epochs=5),
                                   small_split))[-1]
    assert final.status == "diverged" and "stayed above" in final.message


@pytest.fixture(scope="module")
def default_trained_params():
    """The default settings' model on the embedded set: the trained start of issue 18."""
    final = list(ffnn.training_run(ffnn.TrainingConfig(), embedded_split()))[-1]
    assert final.status == "finished"
    return final.params


@pytest.mark.slow
def test_continuing_a_trained_model_with_the_default_settings_finishes(default_trained_params):
    """Issue 18, bug 1: the old limit (10 x the first loss, tiny for a trained model) stopped
    this run as diverged at once."""
    final = list(ffnn.training_run(ffnn.TrainingConfig(epochs=1), embedded_split(),
                                   params=default_trained_params))[-1]
    assert final.status == "finished", final.message
    assert final.message == "Finished 1 epoch (57 steps)."


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
    for name, value in ffnn.init_params(jax.random.key(run.seed), run.arch).items():
        np.testing.assert_array_equal(final.params[name], value)


def test_epoch_chunks_cover_each_digit_at_most_once_in_near_equal_chunks():
    chunks = epoch_chunks(1000, Schedule(epochs=1, batch_size=30, chunk_steps=7), epoch=2)
    assert {len(c) for c in chunks} <= {6, 7}
    indices = np.concatenate(chunks).ravel()
    assert len(indices) == 33 * 30 and len(set(indices.tolist())) == len(indices)
    assert not np.array_equal(indices, np.concatenate(
        epoch_chunks(1000, Schedule(epochs=1, batch_size=30, chunk_steps=7), epoch=3)).ravel())


def test_chunk_steps_prefer_a_divisor_of_the_epoch_so_chunks_have_one_length():
    flops_for_38_steps = 0.4 * 10e9 / 38
    assert chunk_steps(flops_for_38_steps, 57) == 57  # 57 = 3 x 19: nearest divisor, one chunk
    # Two evaluations an epoch: no longer than 28 steps; 19 divides the epoch in three.
    assert chunk_steps(flops_for_38_steps, 57, evals_per_epoch=2) == 19
    assert chunk_steps(flops_for_38_steps, 131) == 38  # a prime: no divisor near, the target
    assert chunk_steps(1.0, 7 * MAX_CHUNK_STEPS) == MAX_CHUNK_STEPS  # tiny steps: capped
    assert chunk_steps(1e15, 57) == 1  # huge steps: one at a time
    assert chunk_steps(flops_for_38_steps, 131, "autodiff") == 15  # a slower backend: shorter


def test_chunks_stay_short_for_big_nets_and_long_for_small_ones():
    big = ffnn.TrainingConfig(ffnn.Architecture((1024,) * 4), batch_size=1024)
    small = ffnn.TrainingConfig(ffnn.Architecture((32,)), batch_size=32)
    assert chunk_steps(ffnn.step_flops(big), 3) == 1
    steps = chunk_steps(ffnn.step_flops(small), 115)  # 115 = 5 x 23
    assert steps == 23 and [len(c) for c in epoch_chunks(115 * 32, Schedule(
        1, 32, chunk_steps=steps), 0)] == [23] * 5


def test_impossible_schedules_are_refused(small_split):
    with pytest.raises(ValueError, match="batch size"):
        next(ffnn.training_run(config(batch_size=401), small_split))


def test_a_nan_loss_counts_as_divergence_even_below_the_blowup_limit():
    params, schedule = {"w": np.ones(2)}, Schedule(1, 1)
    assert divergence((), np.array([1.0, np.nan]), 2, params, schedule) == (
        "The loss became NaN or infinite", 1, 2)  # the NaN is shown on the curve
    problem, kept, seen = divergence((), np.array([1.0]), 2, params, schedule)  # stepper gave up
    assert "NaN" in problem and kept == seen == 1
    assert "parameters" in divergence((), np.array([1.0, 2.0]), 2, {"w": np.array([np.inf])},
                                      schedule)[0]
    assert divergence((), np.array([1.0, 2.0]), 2, params, schedule) == ("", 2, 2)


def test_divergence_needs_a_sustained_rise_above_a_robust_baseline():
    schedule = Schedule(1, 1, blowup_factor=4.0, untrained_loss=math.log(10), patience=3)
    params, limit = {"w": np.ones(2)}, 4 * math.log(10)
    trained = (0.01,) * 50
    # A trained model's loss rising tenfold is far below an untrained model's: not diverged.
    assert divergence(trained, np.array([0.1, 0.5, 1.0, 2.0]), 4, params, schedule) == (
        "", 4, 4)
    # Above the limit only twice in a row: a spike, not a divergence.
    spike = np.array([0.1, 2 * limit, 2 * limit, 0.1, 2 * limit])
    assert divergence(trained, spike, 5, params, schedule) == ("", 5, 5)
    # Three in a row diverges; the losses before the first bad one are kept, the curve shows
    # all three, and the sentence says what the limit is 4 times.
    problem, kept, seen = divergence(
        trained, np.array([0.1, 2 * limit, 2 * limit, 2 * limit, 0.1]), 5, params, schedule)
    assert kept == 1 and seen == 4
    assert problem == ("The loss stayed above 9.21 for 3 steps in a row, 4 times the 2.3 of a "
                       "blind guess")
    # A streak counts across chunks, from the end of the losses so far.
    problem, kept, seen = divergence((*trained, 2 * limit, 2 * limit), np.array([2 * limit]),
                                     1, params, schedule)
    assert problem and kept == 0 and seen == 1
    # The baseline follows the median of recent losses when it is above the untrained loss.
    assert divergence((5.0,) * 50, np.array([4 * 4.9] * 3), 3, params, schedule) == ("", 3, 3)
    assert divergence((5.0,) * 50, np.array([4 * 5.1] * 3), 3, params, schedule).problem == (
        "The loss stayed above 20 for 3 steps in a row, 4 times the 5 it had been at")


def test_snapshots_are_thinned_evenly_past_the_cap_keeping_the_first_and_the_latest():
    steps = tuple(range(0, 50, 10))
    assert thinned(steps, tuple("abcde"), cap=5) == (steps, tuple("abcde"))
    assert thinned((*steps, 50), tuple("abcdef"), cap=5) == ((0, 20, 40, 50), tuple("acef"))


def test_a_long_run_keeps_at_most_max_snapshots(small_split):
    final = list(ffnn.training_run(config(epochs=35, learning_rate=1e-3), small_split))[-1]
    history = final.history
    assert len(history.eval_steps) == 70 and 33 <= len(history.snapshots) <= 64
    assert len(history.snapshot_steps) == len(history.snapshots)
    assert set(history.snapshot_steps) <= set(history.eval_steps)
    assert history.snapshot_steps[0] == history.eval_steps[0]
    assert history.snapshot_steps[-1] == history.eval_steps[-1] == final.step


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


def test_a_model_that_evicts_a_kept_chunk_drops_the_compiled_programs(small_split):
    """Issue 18, memory over time: every function jitted per architecture keeps its programs
    for good (~3 MB a model), so once the chunk cache is full, a new model's stepper clears JAX's
    caches; until then, and for a model compiled already, they are kept."""
    from engine.training.loop import CHUNKS_KEPT, compiled_chunk

    compiled_chunk.cache_clear()
    arch = ffnn.Architecture((11,))
    images = as_float(small_split.x_test[:2])
    params = ffnn.init_params(jax.random.key(0), arch)
    ffnn.logits(params, images, arch=arch)
    key = jax.random.key(0)

    def stepper(rate: float) -> None:  # a rule of its own per learning rate (nothing compiles)
        config = ffnn.TrainingConfig(arch, learning_rate=rate, epochs=1, batch_size=256)
        ffnn.make_stepper(config, small_split.x_train, small_split.y_train, key)

    for i in range(CHUNKS_KEPT):
        stepper(0.1 + i)
    stepper(0.1)  # compiled already: kept
    assert ffnn.logits._cache_size() > 0
    stepper(99.0)  # a ninth rule evicts the oldest
    assert ffnn.logits._cache_size() == 0


def test_a_runs_snapshots_stay_within_their_byte_budget():
    """Big snapshots (a wide net's flattened weights) are kept fewer, small ones up to the cap,
    and never fewer than MIN_SNAPSHOTS: a long run's history stays bounded in memory."""
    from engine.training.loop import (
        MAX_SNAPSHOTS,
        MIN_SNAPSHOTS,
        SNAPSHOT_BUDGET_BYTES,
        snapshot_cap,
    )

    small = ffnn.Snapshot(np.zeros((4, 28, 28), np.float32))
    big = ffnn.Snapshot(np.zeros((64, 28, 28), np.float32), flat=np.zeros(250_000, np.float32))
    huge = ffnn.Snapshot(np.zeros((1, 28, 28), np.float32), flat=np.zeros(10**8 // 4, np.float32))
    assert snapshot_cap(small) == MAX_SNAPSHOTS
    assert snapshot_cap(big) * (big.weights.nbytes + big.flat.nbytes) <= SNAPSHOT_BUDGET_BYTES
    assert snapshot_cap(big) < MAX_SNAPSHOTS
    assert snapshot_cap(huge) == MIN_SNAPSHOTS


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_seed_key_is_jax_random_key_without_a_compile(seed):
    assert np.array_equal(jax.random.key_data(seed_key(seed)),
                          jax.random.key_data(jax.random.key(seed)))


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_key_refuses_seeds_outside_32_bits(seed):
    with pytest.raises(ValueError, match="seed must be between"):
        seed_key(seed)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 4), st.integers(0, 2**31 - 1))
def test_numpy_shift_moves_images_as_the_jax_augmentation_does(max_shift, seed):
    """The autodiff backend's shift equals engine.nn.layers.random_shift for the same offsets."""
    from engine.nn.layers import random_shift

    images = as_float(embedded_split().x_train[:5])
    key = jax.random.key(seed)
    offsets = np.asarray(jax.random.randint(key, (5, 2), 0, 2 * max_shift + 1))
    np.testing.assert_array_equal(shifted(images, offsets, max_shift),
                                  np.asarray(random_shift(key, images, max_shift)))


@pytest.mark.parametrize("backend", ffnn.BACKENDS)
def test_shift_augmentation_trains_on_moved_digits(small_split, backend):
    """With max_shift the net still learns, and not the same model as without (the digits move)."""
    plain, moved = (list(ffnn.training_run(config(backend=backend, max_shift=shift),
                                           small_split))[-1] for shift in (0, 2))
    assert moved.status == "finished" and moved.test_accuracy > 0.5
    assert not np.allclose(plain.params["w0"], moved.params["w0"])
    assert moved.model.metadata["training"]["max_shift"] == 2


@pytest.mark.parametrize("shift", [-1, 9])
def test_an_impossible_shift_is_refused(shift):
    with pytest.raises(ValueError, match="augmentation shift"):
        ffnn.check_config(ffnn.TrainingConfig(max_shift=shift))
