"""Loss landscapes: filter normalisation, a quadratic's slice, PCA of a straight path, networks,
a whole job and its cancellation."""

import threading
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import cnn, ffnn
from engine.app.settings import Limits
from engine.cnn.plane import ConvPlaneNet
from engine.explain.landscape import (
    LINE_ALPHAS,
    LandscapeError,
    LandscapeJob,
    filter_normalized,
    grid,
    grid_problems,
    initial_params,
    job_planes,
    landscape_events,
    pca_path,
    plane_values,
    random_directions,
)
from engine.models.plane import PlaneNet
from engine.models.registry import UnknownFamilyError, family_named
from engine.nn.params import ParameterVectorError, flat_parameters, unflatten


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
    with pytest.raises(ParameterVectorError):
        unflatten(vector[:-1], params)
    d1, d2 = random_directions(0, params)
    assert not np.allclose(d1["w0"], d2["w0"])
    np.testing.assert_allclose(np.linalg.norm(d1["w0"], axis=0),
                               np.linalg.norm(params["w0"], axis=0), rtol=1e-5)


@dataclass(frozen=True)
class Quadratic(PlaneNet):
    """A convex quadratic "network": loss(w) = sum (w - w*)^2 / 2, w* (2, 2) given as a tuple.
    Its first layer's product is w itself (linear in w), so the plane's products carry it."""

    minimum: tuple
    first: str = "w"

    def product(self, x, w):
        return w

    def metrics(self, params, z, y):
        return jnp.stack([((z - jnp.asarray(self.minimum)) ** 2).sum() / 2])


def evaluate(net, origin, directions, points, x, y, chunk=4):
    return np.concatenate(list(plane_values(net, origin, directions, points, x, y, chunk)))


def test_a_convex_quadratic_networks_slice_is_a_paraboloid_centred_on_its_minimum():
    # w* the final weights; along two orthonormal directions the slice is (a^2 + b^2) / 2.
    final = {"w": np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)}
    net = Quadratic(tuple(map(tuple, final["w"].tolist())))
    d1 = {"w": np.array([[1.0, 0], [0, 0]], np.float32)}
    d2 = {"w": np.array([[0, 0.6], [0.8, 0]], np.float32)}
    alphas = betas = np.linspace(-1, 1, 9)
    surface = evaluate(net, final, [d1, d2], grid(alphas, betas), np.zeros(1), np.zeros(1)
                       ).reshape(9, 9)
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


def reference_metrics(scores, y):
    """[cross-entropy, accuracy] of float64 logits (n, 10), computed in numpy."""
    scores = np.asarray(scores, np.float64)
    top = scores.max(1, keepdims=True)
    log_p = scores - top - np.log(np.exp(scores - top).sum(1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean(), (scores.argmax(1) == y).mean()


TINY_CNN = cnn.CNNSpec(filters=(3, 4), kernel_size=3, pool="max", padding="same")


@pytest.mark.parametrize("family, architecture, logits", [
    (ffnn.FAMILY, ffnn.Architecture(hidden=(16, 8)), lambda p, x, a: ffnn.logits(p, x, arch=a)),
    (cnn.FAMILY, TINY_CNN, lambda p, x, a: cnn.logits(p, x, spec=a)),
])
def test_a_planes_values_are_the_model_evaluated_directly(digits, family, architecture, logits):
    # The first layer's product is moved along the plane, not recomputed: still the same
    # network, as the family's own forward pass (our im2col convolution for the CNN) says.
    x, y = digits
    params = initial_params(family, architecture, seed=2)
    d1, d2 = random_directions(5, params)
    values = evaluate(family.plane_net(architecture), params, [d1, d2],
                      np.array([[0.0, 0.0], [0.5, -0.25], [-1.0, 0.75]]), x, y, chunk=2)
    for row, (a, b) in zip(values, [(0, 0), (0.5, -0.25), (-1.0, 0.75)], strict=True):
        moved = {n: params[n] + a * d1[n] + b * d2[n] for n in params}
        loss, accuracy = reference_metrics(logits(moved, x, architecture), y)
        assert row[0] == pytest.approx(loss, rel=1e-4)
        assert row[1] == pytest.approx(accuracy)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [TINY_CNN, cnn.CNNSpec((2, 3, 2), 5, pool="avg"),
                                  cnn.CNNSpec((3,), 3, pool="none", padding="valid")])
@pytest.mark.parametrize(("digits_per_pass", "passes_per_group"),
                         [(7, 3), (16, 8), (50, 1), (200, 2), (500, 1)])
def test_a_cnns_passes_of_digits_do_not_change_its_values(digits, spec, digits_per_pass,
                                                          passes_per_group):
    # 200 digits in passes of 7 (groups of 3: the last group padded), 16, 50, one pass, one
    # padded pass; three blocks of 5x5 kernels with average pooling, one unpooled valid block:
    # the same values as the family's own forward pass on all of them at once.
    x, y = digits
    params = initial_params(cnn.FAMILY, spec, seed=3)
    d1, d2 = random_directions(4, params)
    net = ConvPlaneNet(spec, digits_per_pass=digits_per_pass, passes_per_group=passes_per_group)
    values = evaluate(net, params,
                      [d1, d2], np.array([[0.0, 0.0], [0.3, -0.6]]), x, y, chunk=1)
    for row, (a, b) in zip(values, [(0, 0), (0.3, -0.6)], strict=True):
        moved = {n: params[n] + a * d1[n] + b * d2[n] for n in params}
        loss, accuracy = reference_metrics(cnn.logits(moved, x, spec=spec), y)
        assert row[0] == pytest.approx(loss, rel=1e-4)
        assert row[1] == pytest.approx(accuracy)


@settings(max_examples=8, deadline=None)
@given(chunk=st.integers(1, 9), count=st.integers(1, 9), workers=st.integers(1, 4))
def test_chunking_padding_and_workers_do_not_change_the_values(digits, chunk, count, workers):
    # Chunks evaluated side by side still come back in the points' order.
    x, y = digits[0][:20], digits[1][:20]
    arch = ffnn.Architecture(hidden=(4,))
    params = {k: np.asarray(v) for k, v in ffnn.init_params(jax.random.key(0), arch).items()}
    directions = random_directions(1, params)
    points = np.random.default_rng(count).uniform(-1, 1, (count, 2))
    net = ffnn.FAMILY.plane_net(arch)
    together = np.concatenate(list(plane_values(net, params, directions, points, x, y, chunk,
                                                workers=workers)))
    np.testing.assert_allclose(together, evaluate(net, params, directions, points, x, y, count),
                               rtol=1e-5, atol=1e-6)


def test_a_kind_no_family_answers_to_is_refused():
    with pytest.raises(UnknownFamilyError, match="No model family here is called 'rnn'"):
        family_named("rnn")


def small_job(digits, snapshots=3):
    """A 3x3 landscape of a tiny FFNN on 30 digits, with a line and a path of `snapshots`."""
    arch = ffnn.Architecture(hidden=(4,))
    initial = {k: np.asarray(v) for k, v in ffnn.init_params(jax.random.key(0), arch).items()}
    final = {k: v + 0.1 for k, v in initial.items()}
    t = np.linspace(0, 1, snapshots)[:, None]
    start, end = flat_parameters(initial), flat_parameters(final)
    path = start + t * (end - start) + np.sin(6 * t) * 0.01  # a slightly curved path
    steps = tuple(range(0, 10 * snapshots, 10))
    return LandscapeJob(ffnn.FAMILY, arch, final, initial, path, steps,
                        digits[0][:30], digits[1][:30], resolution=3)


def test_a_job_computes_the_line_the_slice_and_the_path_with_progress(digits):
    job = small_job(digits)
    events = list(landscape_events(job, threading.Event()))
    total = len(LINE_ALPHAS) + 9 + 9
    assert [e.step for e in events[:-1]] == sorted({e.step for e in events[:-1]})  # it advances
    last = events[-1]
    assert (last.status, last.step, last.total_steps, last.model) == ("finished", total, total,
                                                                      None)
    result = last.landscape
    assert result.line.shape == (41, 2) and result.slice.shape == (3, 3, 2)
    assert result.path_grid.shape == (3, 3, 2) and result.steps == (0, 10, 20)

    def direct(alpha):  # the net's own forward pass at initial + alpha (final - initial)
        params = {k: job.initial[k] + alpha * (job.final[k] - job.initial[k]) for k in job.final}
        return reference_metrics(ffnn.logits(params, job.x, arch=job.architecture), job.y)

    for alpha in (0.0, 0.5, 1.0, 1.5):
        np.testing.assert_allclose(result.line[list(LINE_ALPHAS).index(alpha)], direct(alpha),
                                   rtol=1e-5)
    np.testing.assert_allclose(result.slice[1, 1], direct(1.0), rtol=1e-5)  # the centre: final


def test_a_job_stops_between_two_chunks_when_asked(digits):
    stop = threading.Event()
    events = landscape_events(small_job(digits), stop)
    first = next(events)
    assert first.status == "running" and first.step > 0
    stop.set()
    rest = list(events)
    assert [e.status for e in rest] == ["stopped"]
    assert rest[0].landscape is None and rest[0].step == first.step
    assert f"after {first.step:,} of" in rest[0].message


def test_a_job_without_a_run_has_no_line_and_no_path(digits):
    job = small_job(digits, snapshots=1)
    job = LandscapeJob(job.family, job.architecture, job.final, None, job.snapshots, job.steps,
                       job.x, job.y, job.resolution)
    result = list(landscape_events(job, threading.Event()))[-1].landscape
    assert result.line is None and result.path is None and result.slice.shape == (3, 3, 2)


def test_over_limit_grids_are_refused_with_a_reason():
    limits = Limits(max_landscape_grid=31, max_landscape_digits=500)
    assert grid_problems(21, 500, limits) == []
    problems = grid_problems(41, 1000, limits)
    assert "41×41" in problems[0] and "1,000 digits" in problems[1]
    assert grid_problems(2, 10, limits) == ["a grid needs at least 3 points a side."]


@pytest.fixture(scope="module")
def digits():
    from engine.data.mnist import as_float, embedded_split

    split = embedded_split()
    return as_float(split.x_test[:200]), split.y_test[:200]


def test_a_batch_norm_nets_path_leaves_out_the_statistics_its_loss_does_not_read(digits):
    # The trained weights move along one line while the stored statistics swing widely: the
    # path's plane is that line (~100% of the variance), with nothing along the statistics.
    arch = ffnn.Architecture(hidden=(4,), batch_norm=True)
    final = initial_params(ffnn.FAMILY, arch, seed=1)
    net = ffnn.FAMILY.plane_net(arch)
    read = np.concatenate([np.full(np.size(final[n]), n not in ("mean0", "var0"))
                           for n in sorted(final)])
    line = np.random.default_rng(0).normal(size=read.size) * read
    swings = np.random.default_rng(1).normal(size=read.size) * 100 * ~read
    snapshots = np.stack([flat_parameters(final) + t * line + (-1) ** t * swings
                          for t in range(4)])
    job = LandscapeJob(ffnn.FAMILY, arch, final, None, snapshots, (0, 1, 2, 3), *digits, 3)
    _, path = job_planes(job, net)
    assert np.all(path.directions[:, ~read] == 0)
    assert path.explained[0] == pytest.approx(1.0, abs=1e-6)
