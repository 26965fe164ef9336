"""The CNN's layer health (engine.cnn.training + engine.explain.health): recorded at each
evaluation of a
real run, its gradient norms those of jax.grad, dead filters as defined, every activation
counted once, one compile per architecture."""

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from engine import cnn
from engine.cnn.training import (
    health_pass,
    health_series,
    measure_health,
    snapshot_weights,
    weight_names,
)
from engine.data.mnist import Split, embedded_split
from engine.explain import health

SPEC = cnn.CNNSpec((4, 6))


@pytest.fixture(scope="module")
def small_split() -> Split:
    """640 training digits of the embedded split (10 steps of 64), 100 to validate and test."""
    split = embedded_split()
    return Split(split.x_train[:640], split.y_train[:640], split.x_val[:100], split.y_val[:100],
                 split.x_test[:100], split.y_test[:100])


@pytest.fixture(scope="module")
def batch(small_split) -> tuple[np.ndarray, np.ndarray]:
    return health.fixed_batch(small_split, 32)


@pytest.fixture(scope="module")
def run(small_split, batch):
    """The last event of a 2-epoch run of SPEC that records health: 4 evaluations."""
    config = cnn.TrainingConfig(SPEC, batch_size=64, epochs=2)
    *_, last = cnn.training_run(config, small_split, health_batch=batch)
    assert last.status == "finished", last.message
    return last


def reference_grad_norms(params, batch) -> np.ndarray:
    """‖∂loss/∂W‖ of each weight array, by jax.grad of optax's cross-entropy on the logits."""
    x, y = batch

    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(
            cnn.logits(p, x, spec=SPEC), jnp.asarray(y)).mean()

    grads = jax.grad(loss)(params)
    return np.array([np.linalg.norm(grads[name]) for name in weight_names(SPEC)])


def test_a_run_records_health_at_every_evaluation(run, batch):
    history = run.history
    assert len(history.snapshots) == 4
    assert all(s.health is not None for s in history.snapshots)
    series = health_series(history.snapshot_steps, history.snapshots, SPEC)
    assert series.histograms.shape == (4, 2, health.BINS)
    assert series.grad_norms.shape == series.update_ratios.shape == (4, 3)  # conv1, conv2, dense
    assert np.isnan(series.saturated).all() and np.isfinite(series.dead).all()  # ReLU: can die
    assert np.isnan(series.update_ratios[0]).all() and np.isfinite(series.update_ratios[1:]).all()
    before, after = (snapshot_weights(s, SPEC) for s in history.snapshots[-2:])
    steps = history.snapshot_steps[-1] - history.snapshot_steps[-2]
    np.testing.assert_allclose(series.update_ratios[-1],
                               health.update_ratios(before, after, steps), rtol=1e-6)


def test_histograms_count_every_position_of_every_filter_once(run, batch):
    """32 digits: 28x28 maps of 4 filters in block 1, 14x14 maps of 6 in block 2."""
    for snapshot in run.history.snapshots:
        np.testing.assert_array_equal(snapshot.health.histograms.sum(axis=1),
                                      [32 * 28 * 28 * 4, 32 * 14 * 14 * 6])


@pytest.mark.slow
def test_gradient_norms_are_those_of_jax_grad_at_the_same_params(run, batch):
    """The last snapshot is taken at the run's final parameters."""
    recorded = run.history.snapshots[-1].health
    np.testing.assert_allclose(recorded.grad_norms,
                               reference_grad_norms(run.model.params, batch), rtol=1e-4)
    np.testing.assert_allclose(recorded.weight_norms, [
        np.linalg.norm(run.model.params[name]) for name in weight_names(SPEC)], rtol=1e-6)
    fresh = cnn.init_params(jax.random.key(5), SPEC)
    np.testing.assert_allclose(measure_health(fresh, batch, spec=SPEC).grad_norms,
                               reference_grad_norms(fresh, batch), rtol=1e-4)


def test_a_filter_with_a_large_negative_bias_is_dead_and_the_others_are_not(batch):
    params = cnn.init_params(jax.random.key(0), SPEC)
    params["conv0_b"] = params["conv0_b"].at[1].set(-100.0)  # block 1: 1 of its 4 filters
    params["conv1_b"] = params["conv1_b"].at[jnp.array([0, 3, 5])].set(-100.0)  # 3 of 6
    measured = measure_health(params, batch, spec=SPEC)
    np.testing.assert_allclose(measured.dead, [1 / 4, 3 / 6])
    np.testing.assert_array_equal(measured.identical, [0.0, 0.0])  # dead filters are not twins


def test_the_health_pass_sees_what_the_feature_maps_show(batch):
    """Its activations (B * H * W, filters) are each digit's feature maps (H, W, filters)."""
    params = cnn.init_params(jax.random.key(1), SPEC)
    _, columns, _ = health_pass(params, batch[0][:2], batch[1][:2].astype(np.int32), spec=SPEC)
    for i in range(2):
        maps = cnn.feature_maps(params, batch[0][i], spec=SPEC)
        for block, (column, fmap) in enumerate(zip(columns, maps, strict=True)):
            h, w, f = fmap.shape
            per_digit = np.asarray(column).reshape(h, w, 2, f)[:, :, i]
            np.testing.assert_allclose(per_digit, fmap, rtol=1e-5, atol=1e-6, err_msg=str(block))


def test_the_health_pass_compiles_once_per_architecture(small_split, batch):
    """A run's second and later evaluations reuse the first one's program, and so does a second
    run of the same architecture. (Counted from the first evaluation on: starting a run may
    drop every compiled program, `engine.training.loop.keep_compiled_programs_bounded`.)"""
    spec = cnn.CNNSpec((3,))
    config = cnn.TrainingConfig(spec, batch_size=64, epochs=2)
    sizes = [health_pass._cache_size() for event in cnn.training_run(
        config, small_split, health_batch=batch) if event.history.snapshots]
    assert len(sizes) >= 4 and len(set(sizes)) == 1  # one program, from the first evaluation on
    *_, last = cnn.training_run(replace(config, seed=1), small_split, health_batch=batch)
    assert len(last.history.snapshots) == 4
    assert health_pass._cache_size() <= sizes[-1]


def test_without_a_health_batch_nothing_is_measured(small_split):
    config = cnn.TrainingConfig(cnn.CNNSpec((2,)), batch_size=128, epochs=1)
    *_, last = cnn.training_run(config, small_split)
    assert all(s.health is None for s in last.history.snapshots)
    assert health_series(last.history.snapshot_steps, last.history.snapshots, config.spec) is None
