"""Layer health (engine.explain.health), the new activations and initialisers, and the presets'
promises."""

from dataclasses import replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine import ffnn
from engine.autodiff import Tensor
from engine.data.mnist import Split, as_float, embedded_split
from engine.explain import health, lr_finder
from engine.explain.diagnosis import MOSTLY
from engine.ffnn.model import layer_pass
from engine.ffnn.training import (
    health_series,
    measure_health,
    snapshot_weights,
    take_snapshot,
)
from engine.nn.layers import INITS, JAX_OPS, activation, autodiff_ops, init_dense, init_std
from ui.views.health import HEALTH_PRESETS


@pytest.fixture(scope="module")
def small_split() -> Split:
    """640 training digits of the embedded split (10 steps of 64), 100 to validate and test."""
    split = embedded_split()
    return Split(split.x_train[:640], split.y_train[:640], split.x_val[:100], split.y_val[:100],
                 split.x_test[:100], split.y_test[:100])


# --- activations: our engine against jax's own definitions --------------------------------

JAX_REFERENCE = {"leaky_relu": partial(jax.nn.leaky_relu, negative_slope=0.01),
                 "gelu": partial(jax.nn.gelu, approximate=True)}


@settings(max_examples=20, deadline=None)
@given(values=hnp.arrays(np.float64, (3, 4), elements=st.one_of(  # leaky ReLU's kink at 0 has
    st.floats(-4, -1e-3), st.floats(1e-3, 4))))  # no single slope (drawn away from it: no filter)
@pytest.mark.parametrize("name", sorted(JAX_REFERENCE))
def test_new_activations_match_jax_in_value_and_gradient(name, values):
    weights = np.random.default_rng(0).normal(size=values.shape)
    x = Tensor(values, requires_grad=True)
    out = activation(autodiff_ops(), name)(x)
    (out * weights).sum().backward()
    with jax.enable_x64(True):
        reference = JAX_REFERENCE[name]
        np.testing.assert_allclose(out.data, reference(values), rtol=1e-6, atol=1e-9)
        expected = jax.grad(lambda v: (reference(v) * weights).sum())(values)
        np.testing.assert_allclose(x.grad, expected, rtol=1e-6, atol=1e-9)
        ours_on_jax = activation(JAX_OPS, name)(values)
        np.testing.assert_allclose(ours_on_jax, reference(values), rtol=1e-6, atol=1e-9)


# --- initialisers ----------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", INITS)
def test_every_initialiser_has_its_documented_variance(scheme):
    """120,000 weights of a 400 -> 300 layer: their std within 2% of the documented one."""
    w, b = init_dense(np.random.default_rng(0), 400, 300, scheme)
    documented = {"he": np.sqrt(2 / 400), "xavier": np.sqrt(2 / 700), "lecun": np.sqrt(1 / 400),
                  "tiny": 0.01 * np.sqrt(2 / 400), "large": 10 * np.sqrt(2 / 400), "zeros": 0.0}
    assert init_std(scheme, 400, 300) == pytest.approx(documented[scheme])
    assert w.shape == (400, 300) and w.dtype == np.float32 and not b.any()
    assert w.std() == pytest.approx(documented[scheme], rel=0.02)
    assert abs(w.mean()) < 0.02 * documented[scheme] + 1e-12


def test_an_unknown_initialiser_is_refused():
    with pytest.raises(ValueError, match="unknown initialisation"):
        init_dense(np.random.default_rng(0), 3, 2, "orthogonal")
    with pytest.raises(ValueError, match="unknown initialisation"):
        ffnn.Architecture.from_metadata({"hidden": [8], "activation": "relu", "init": "ones"})


# --- the statistics ---------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(values=hnp.arrays(np.float32, (5, 7), elements=st.floats(-10, 10, width=32)),
       name=st.sampled_from(sorted(health.VALUE_RANGES)))
def test_histogram_counts_add_up_even_outside_the_bins(values, name):
    counts = health.histogram(values, health.bin_edges(name))
    assert counts.shape == (health.BINS,) and counts.sum() == values.size


def one_layer(activation_name: str, w0: np.ndarray) -> tuple[ffnn.TrainingConfig, dict]:
    """A 784-4-10 net with first-layer weights w0 (784, 4), zero biases, last weights 0.1."""
    arch = ffnn.Architecture((4,), activation_name)
    params = {"w0": w0.astype(np.float32), "b0": np.zeros(4, np.float32),
              "w1": np.full((4, 10), 0.1, np.float32), "b1": np.zeros(10, np.float32)}
    return ffnn.TrainingConfig(arch), params


BATCH = (np.linspace(0.1, 1, 8 * 784, dtype=np.float32).reshape(8, 28, 28), np.arange(8))


@pytest.mark.parametrize("backend", ["jax", "autodiff"])
def test_dead_units_on_constructed_weights(backend):
    """Inputs are positive: units with only negative weights never fire, the others always."""
    w0 = np.ones((784, 4)) * np.array([-1.0, -0.01, 0.01, 1.0])
    config, params = one_layer("relu", w0)
    record = measure_health(params, BATCH, config=replace(config, backend=backend))
    assert record.dead == pytest.approx([0.5]) and np.isnan(record.saturated).all()
    assert record.histograms.sum() == 8 * 4


@pytest.mark.parametrize(("name", "weights", "expected"), [
    ("tanh", [-1.0, 0.0, 0.0, 1.0], 0.5),     # tanh(+-large) is +-1; tanh(0) = 0
    ("sigmoid", [-1.0, 0.0, 0.0, 0.0], 0.25),  # sigmoid(-large) is 0; sigmoid(0) = 0.5
])
def test_saturated_fraction_on_constructed_weights(name, weights, expected):
    config, params = one_layer(name, np.ones((784, 4)) * np.array(weights))
    record = measure_health(params, BATCH, config=config)
    assert record.saturated == pytest.approx([expected]) and np.isnan(record.dead).all()


@pytest.mark.parametrize(("name", "values"), [
    ("tanh", [0.96, 0.98, -0.98, -0.5, 1.0, 0.0]),       # saturated: |tanh| > 0.97
    ("sigmoid", [0.025, 0.04, 0.96, 0.975, 0.0, 0.5]),   # saturated: < 0.03 or > 0.97
])
def test_saturation_starts_where_the_readme_says(name, values):
    """Hand-counted: half of each set of values lies in the flat tails, just past the
    thresholds; the others lie just short of them, or in the middle."""
    assert health.saturated_fraction(np.array([values]), name) == pytest.approx(0.5)


def test_a_non_saturating_activation_has_no_saturated_fraction():
    with pytest.raises(ValueError, match="does not saturate"):
        health.saturated_fraction(np.zeros((2, 2)), "relu")


def gelu_net_loss(params, x, y, *, layers):
    """Reference: the mean cross-entropy of a dense GELU net written out with jax.nn's own GELU
    and log-softmax (not the engine's layers or losses); x (n, 28, 28), y (n,)."""
    h = x.reshape(len(x), -1)
    for i in range(layers):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        h = jax.nn.gelu(h, approximate=True) if i < layers - 1 else h
    return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(len(y)), y])


@pytest.mark.parametrize("backend", ["jax", "autodiff"])
def test_gradient_norms_equal_those_of_jax_grad(backend, small_split):
    arch = ffnn.Architecture((32, 16), "gelu", "xavier")
    params = ffnn.init_params(jax.random.key(1), arch)
    x, y = as_float(small_split.x_train[:32]), small_split.y_train[:32]
    config = ffnn.TrainingConfig(arch, backend=backend)
    record = measure_health(params, (x, y), config=config)
    grads = jax.grad(partial(gelu_net_loss, layers=3))(params, x, y)
    expected = [np.linalg.norm(grads[f"w{i}"]) for i in range(3)]
    np.testing.assert_allclose(record.grad_norms, expected, rtol=1e-4)
    np.testing.assert_allclose(record.weight_norms,
                               [np.linalg.norm(params[f"w{i}"]) for i in range(3)], rtol=1e-6)
    _, outputs, _ = layer_pass(params, x, y, arch=arch, loss_name="cross_entropy",
                               backend=backend)
    assert [o.shape for o in outputs] == [(32, 32), (32, 16), (32, 10)]


def test_update_ratio_of_an_sgd_step_is_learning_rate_times_gradient():
    """One SGD step from jax.grad: log10(lr ||g|| / ||W - lr g||); two equal steps average."""
    arch = ffnn.Architecture((8,))
    params = ffnn.init_params(jax.random.key(0), arch)
    x, y = BATCH
    grads = jax.grad(partial(ffnn.loss, arch=arch, loss_name="cross_entropy"))(params, x, y)
    lr = 0.1
    after = [params[f"w{i}"] - lr * np.asarray(grads[f"w{i}"]) for i in range(2)]
    expected = [np.log10(lr * np.linalg.norm(grads[f"w{i}"]) / np.linalg.norm(after[i]))
                for i in range(2)]
    before = [params["w0"], params["w1"]]
    np.testing.assert_allclose(health.update_ratios(before, after, 1), expected, rtol=1e-5)
    twice = [b + 2 * (a - b) for b, a in zip(before, after, strict=True)]
    np.testing.assert_allclose(health.update_ratios(before, twice, 2), [
        np.log10(lr * np.linalg.norm(grads[f"w{i}"]) / np.linalg.norm(twice[i])) for i in range(2)],
        rtol=1e-5)


def test_a_run_records_health_at_each_evaluation(small_split):
    """The series lines up with the snapshots: histograms add up to the batch's activations,
    each update ratio is the weights' change between two snapshots over the steps between."""
    config = ffnn.TrainingConfig(ffnn.Architecture((16, 8), "tanh"), epochs=2, batch_size=64)
    batch = ffnn.twin_batch(small_split, 32)
    *_, last = ffnn.training_run(config, small_split, health_batch=batch, evals_per_epoch=2)
    history = last.history
    series = health_series(history.snapshot_steps, history.snapshots, config.arch)
    assert series.histograms.shape == (len(history.snapshots), 2, health.BINS)
    assert (series.histograms.sum(axis=2) == np.array([32 * 16, 32 * 8])).all()
    assert np.isnan(series.update_ratios[0]).all()
    before, after = (snapshot_weights(s, config.arch) for s in history.snapshots[-2:])
    steps = history.snapshot_steps[-1] - history.snapshot_steps[-2]
    expected = [np.log10(np.linalg.norm(a - b) / steps / np.linalg.norm(a))
                for b, a in zip(before, after, strict=True)]
    np.testing.assert_allclose(series.update_ratios[-1], expected, rtol=1e-5)
    assert health_series((), (), config.arch) is None


def test_health_read_off_the_twin_check_is_the_health_of_its_own_pass(small_split):
    config = ffnn.TrainingConfig(ffnn.Architecture((16,), "sigmoid"), backend="autodiff")
    params = ffnn.init_params(jax.random.key(2), config.arch)
    batch = ffnn.twin_batch(small_split, 16)
    shared = take_snapshot(params, config=config, twin_batch=batch, health_batch=batch)
    alone = take_snapshot(params, config=config, twin_batch=None, health_batch=batch)
    assert shared.twin is not None and alone.twin is None
    for name in ("histograms", "saturated", "grad_norms", "weight_norms"):
        np.testing.assert_array_equal(getattr(shared.health, name), getattr(alone.health, name))


# --- what the presets promise, on real training steps ------------------------------------------

def first_to_last_gradient(preset: str, split: Split) -> float:
    """The first layer's gradient norm over the last layer's after one short epoch."""
    config = replace(HEALTH_PRESETS[preset], epochs=1)
    *_, last = ffnn.training_run(config, split, health_batch=ffnn.twin_batch(split, 64))
    norms = last.history.snapshots[-1].health.grad_norms
    return float(norms[0] / norms[-1])


def test_deep_sigmoid_with_tiny_weights_starves_the_first_layer(small_split):
    assert first_to_last_gradient("vanishing gradients", small_split) <= 1e-2


def test_he_and_relu_keep_every_layer_within_tenfold(small_split):
    assert 0.1 <= first_to_last_gradient("healthy", small_split) <= 10


def test_a_large_learning_rate_kills_relus(small_split):
    config = replace(HEALTH_PRESETS["dead ReLUs"], epochs=2)
    *_, last = ffnn.training_run(config, small_split, health_batch=ffnn.twin_batch(small_split))
    assert last.history.snapshots[-1].health.dead.max() > MOSTLY


# --- identical units ---------------------------------------------------------------------------

@given(st.integers(2, 40), st.integers(1, 64), st.integers(0, 2**31 - 1))
@settings(max_examples=30, deadline=None)
def test_identical_units_are_counted_exactly(units, batch, seed):
    """Random columns are all distinct; copying some onto others makes exactly those twins
    (every member of a group of copies counts); columns of zeros (dead) are never twins."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(batch, units)).astype(np.float32)
    assert health.identical_fraction(values) == 0.0
    copies = rng.integers(0, units, size=units // 2)  # unit i becomes a copy of unit copies[i]
    for target, source in enumerate(copies):
        values[:, units - 1 - target] = values[:, source]
    twins = sum(1 for j in range(units)
                if sum(tuple(values[:, k]) == tuple(values[:, j]) for k in range(units)) > 1)
    assert health.identical_fraction(values) == pytest.approx(twins / units)
    values[:, :] = 0
    assert health.identical_fraction(values) == 0.0


def test_zero_initialisation_makes_every_unit_a_twin(small_split):
    config = ffnn.TrainingConfig(ffnn.Architecture((16, 16), "sigmoid", "zeros"), epochs=1)
    *_, last = ffnn.training_run(config, small_split, health_batch=ffnn.twin_batch(small_split))
    np.testing.assert_array_equal(last.history.snapshots[-1].health.identical, [1.0, 1.0])


# --- the learning-rate range test ---------------------------------------------------------------

def quadratic(params, x, y, *, curvatures):
    """0.5 sum(a_i (w_i - 1 - x_i)^2), x a batch's noise (2,): convex; plain gradient descent
    is stable for rates < 2 / max a."""
    return 0.5 * jnp.sum(curvatures * (params["w"] - 1.0 - x) ** 2)


@settings(max_examples=8, deadline=None)
@given(largest=st.floats(1.0, 100.0))
def test_the_range_test_on_a_convex_quadratic_suggests_a_stable_rate(largest):
    curvatures = jnp.array([largest / 10, largest])
    steps = 80
    noise = np.random.default_rng(0).normal(0, 0.1, (steps, 2)).astype(np.float32)
    found = lr_finder.range_test(partial(quadratic, curvatures=curvatures), "sgd",
                                 {"w": jnp.zeros(2)}, noise, np.zeros(steps),
                                 np.arange(steps)[:, None], low=1e-5, high=10.0)
    stable = 2.0 / largest
    assert found.suggestion is not None and found.suggestion < stable, found.reason
    assert found.diverged_at is not None and found.diverged_at > stable  # it stopped early
    assert len(found.rates) < steps and found.rates[-1] < found.diverged_at
    assert np.all(np.diff(found.rates) > 0) and found.rates[0] == pytest.approx(1e-5)
    np.testing.assert_allclose(found.smoothed, weighted_mean_reference(found.losses, 0.9),
                               rtol=1e-12)


def weighted_mean_reference(losses: np.ndarray, keep: float) -> np.ndarray:
    """Reference: the bias-corrected moving average (n,) of losses (n,) as the weighted mean it
    is, written out: at step i, loss j weighs keep ** (i - j)."""
    out = np.empty(len(losses))
    for i in range(len(losses)):
        weights = keep ** np.arange(i, -1, -1.0)
        out[i] = weights @ losses[:i + 1] / weights.sum()
    return out


def test_smoothing_is_the_bias_corrected_moving_average_keeping_nine_tenths():
    losses = np.random.default_rng(0).uniform(0.0, 5.0, 30)
    np.testing.assert_allclose(lr_finder.smooth(losses), weighted_mean_reference(losses, 0.9),
                               rtol=1e-12)
    np.testing.assert_allclose(lr_finder.smooth(losses, keep=0.5),
                               weighted_mean_reference(losses, 0.5), rtol=1e-12)
    np.testing.assert_allclose(lr_finder.smooth(np.full(5, 3.0)), 3.0)
    assert lr_finder.smooth(np.array([2.0, 0.0]))[0] == 2.0


def test_the_range_test_stops_once_the_smoothed_loss_is_four_times_its_lowest():
    # The lowest before step 3 is 0.5: 1.9 is under 4 x 0.5, 2.1 over it.
    assert lr_finder.blowup_index(np.array([1.0, 0.5, 1.9, 2.1, 0.1])) == 3
    assert lr_finder.blowup_index(np.array([1.0, 0.5, 1.9, 1.99])) is None
    assert lr_finder.blowup_index(np.array([1.0, np.nan, 0.5])) == 1


def test_a_loss_that_never_falls_gets_no_suggestion():
    rates = lr_finder.rate_schedule(1e-3, 1.0, 10)
    rate, reason = lr_finder.suggestion(rates, np.linspace(1.0, 2.0, 10))
    assert rate is None and "never fell" in reason
    with pytest.raises(ValueError):
        lr_finder.rate_schedule(1.0, 0.1, 10)


def test_the_range_test_of_the_default_net_suggests_a_rate_that_trains(small_split):
    config = ffnn.TrainingConfig(ffnn.Architecture((32,)), optimizer="sgd", epochs=1)
    params = ffnn.init_params(jax.random.key(0), config.arch)
    before = {name: value.copy() for name, value in params.items()}
    found = lr_finder.ffnn_range_test(config, small_split.x_train, small_split.y_train, params,
                                      steps=60)
    assert found.suggestion is not None
    for name, value in before.items():  # a copy was trained
        np.testing.assert_array_equal(params[name], value)
    *_, last = ffnn.training_run(replace(config, learning_rate=found.suggestion), small_split)
    assert last.status == "finished" and last.history.losses[-1] < last.history.losses[0]
