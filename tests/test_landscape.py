"""Loss landscapes: filter normalisation, a quadratic's slice, PCA of a straight path, networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ffnn
from engine.landscape import (
    LandscapeError,
    evaluate_grid,
    filter_normalized,
    flat_parameters,
    grid_evaluator,
    grid_problems,
    network_metrics,
    pca_path,
    random_directions,
    unflatten,
)
from engine.settings import Limits


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), out=st.integers(1, 6))
def test_each_filter_of_the_direction_has_that_filters_norm(seed, out):
    rng = np.random.default_rng(seed)
    params = {"conv_w": rng.normal(size=(3, 3, 2, out)), "w": rng.normal(size=(5, out)),
              "b": rng.normal(size=out)}
    direction = {name: rng.normal(size=np.shape(p)) * 7 for name, p in params.items()}
    normalised = filter_normalized(direction, params)
    for name in ("conv_w", "w"):
        d, w = normalised[name], params[name]
        for unit in range(out):  # a filter: one output unit's weights, the last axis
            np.testing.assert_allclose(np.linalg.norm(d[..., unit]),
                                       np.linalg.norm(w[..., unit]), rtol=1e-5)
            # the direction of each filter is kept, only its length changes
            cosine = (d[..., unit] * direction[name][..., unit]).sum() / (
                np.linalg.norm(d[..., unit]) * np.linalg.norm(direction[name][..., unit]))
            assert cosine == pytest.approx(1.0, abs=1e-5)
    assert not normalised["b"].any()  # biases are not moved


def test_flatten_round_trips_and_random_directions_are_normalised():
    params = ffnn.init_params(jax.random.key(1), ffnn.Architecture(hidden=(8,)))
    vector = flat_parameters(params)
    assert vector.shape == (784 * 8 + 8 + 8 * 10 + 10,)
    back = unflatten(vector, params)
    for name in params:
        np.testing.assert_array_equal(back[name], params[name])
    with pytest.raises(LandscapeError):
        unflatten(vector[:-1], params)
    d1, d2 = random_directions(jax.random.key(0), params)
    assert not np.allclose(d1["w0"], d2["w0"])
    np.testing.assert_allclose(np.linalg.norm(d1["w0"], axis=0),
                               np.linalg.norm(params["w0"], axis=0), rtol=1e-5)


def test_a_convex_quadratic_networks_slice_is_a_paraboloid_centred_on_its_minimum():
    # "Network": loss(w) = sum (w - w*)^2 / 2 with w* the final weights; the slice along two
    # orthonormal directions is (a^2 + b^2) / 2 exactly.
    final = {"w": np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)}

    def metrics(params):
        return jnp.stack([((params["w"] - final["w"]) ** 2).sum() / 2])

    d1 = {"w": np.array([[1.0, 0], [0, 0]], np.float32)}
    d2 = {"w": np.array([[0, 0.6], [0.8, 0]], np.float32)}
    alphas = betas = np.linspace(-1, 1, 9)
    surface = evaluate_grid(grid_evaluator(metrics, final, [d1, d2]), alphas, betas)[..., 0]
    a, b = np.meshgrid(alphas, betas)
    np.testing.assert_allclose(surface, (a**2 + b**2) / 2, atol=1e-6)
    assert np.unravel_index(surface.argmin(), surface.shape) == (4, 4)  # the centre


def test_pca_of_a_straight_line_trajectory_is_one_direction():
    rng = np.random.default_rng(3)
    start, end = rng.normal(size=50), rng.normal(size=50)
    steps = np.linspace(0, 1, 12) ** 2  # uneven steps, still on one line
    snapshots = start + steps[:, None] * (end - start)
    path = pca_path(snapshots, end)
    assert path.explained[0] == pytest.approx(1.0, abs=1e-9)
    assert path.explained[1] == pytest.approx(0.0, abs=1e-9)
    line = (end - start) / np.linalg.norm(end - start)
    assert abs(path.directions[0] @ line) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(np.abs(path.coordinates[:, 0]),
                               (1 - steps) * np.linalg.norm(end - start), atol=1e-9)
    np.testing.assert_allclose(path.coordinates[-1], [0, 0], atol=1e-12)


def test_pca_of_a_curved_path_splits_its_variance_and_needs_two_snapshots():
    t = np.linspace(0, np.pi / 2, 20)
    snapshots = np.column_stack([np.cos(t), np.sin(t), np.zeros(20)]) * 3
    path = pca_path(snapshots, snapshots[-1])
    assert path.explained.sum() == pytest.approx(1.0)
    assert 0.0 < path.explained[1] < path.explained[0]
    np.testing.assert_allclose(path.directions @ path.directions.T, np.eye(2), atol=1e-9)
    with pytest.raises(LandscapeError, match="two weight snapshots"):
        pca_path(snapshots[:1], snapshots[-1])


def test_network_slice_matches_the_model_evaluated_directly(digits):
    x, y = digits
    arch = ffnn.Architecture(hidden=(16,))
    params = ffnn.init_params(jax.random.key(2), arch)
    metrics = network_metrics("ffnn", arch, x, y)
    d1, d2 = random_directions(jax.random.key(5), params)
    values = grid_evaluator(metrics, params, [d1, d2])(np.array([[0.0, 0.0], [0.5, -0.25]]))
    moved = {n: params[n] + 0.5 * d1[n] - 0.25 * d2[n] for n in params}
    for row, p in zip(values, [params, moved], strict=True):
        scores = np.asarray(ffnn.logits(p, x, arch=arch), np.float64)
        log_p = scores - np.log(np.exp(scores - scores.max(1, keepdims=True)).sum(1,
                                keepdims=True)) - scores.max(1, keepdims=True)
        assert row[0] == pytest.approx(-log_p[np.arange(len(y)), y].mean(), rel=1e-4)
        assert row[1] == pytest.approx((scores.argmax(1) == y).mean())


def test_over_limit_grids_are_refused_with_a_reason():
    limits = Limits(max_landscape_grid=31, max_landscape_digits=500)
    assert grid_problems(21, 500, limits) == []
    problems = grid_problems(41, 1000, limits)
    assert "41×41" in problems[0] and "1,000 digits" in problems[1]
    assert grid_problems(2, 10, limits) == ["a grid needs at least 3 points a side."]


@pytest.fixture(scope="module")
def digits():
    from engine.data import as_float, embedded_split

    split = embedded_split()
    return as_float(split.x_test[:200]), split.y_test[:200]
