"""Hand-written optimizers against optax: same parameters after 100 steps, numpy and JAX alike."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.nn.optim import adam, make_optimizer, momentum, nesterov, rmsprop, sgd


@pytest.fixture(autouse=True)
def float64_jax():
    """Compare in float64 (optax follows its inputs' dtype), without leaking the flag."""
    with jax.enable_x64(True):
        yield

CASES = [
    (lambda lr: sgd(lr), lambda lr: optax.sgd(lr)),
    (lambda lr: momentum(lr, 0.9), lambda lr: optax.sgd(lr, momentum=0.9)),
    (lambda lr: adam(lr), lambda lr: optax.adam(lr)),
    (lambda lr: nesterov(lr, 0.8), lambda lr: optax.sgd(lr, momentum=0.8, nesterov=True)),
    (lambda lr: rmsprop(lr, 0.95), lambda lr: optax.rmsprop(lr, decay=0.95)),
]
IDS = ["sgd", "momentum", "adam", "nesterov", "rmsprop"]


def quadratic_grads(params: dict, target: dict) -> dict:
    """A bounded gradient field pulling p to t, nonlinear in p so the step history matters."""
    return jax.tree_util.tree_map(lambda p, t: (p - t) * (1 + 0.5 / (1 + p * p)), params, target)


def start(seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    params = {"w": rng.normal(size=(3, 4)), "layers": [{"b": rng.normal(size=4)}]}
    target = {"w": rng.normal(size=(3, 4)), "layers": [{"b": rng.normal(size=4)}]}
    return params, target


def run_ours(make, lr, params, target, to_array):
    opt = make(lr)
    params = jax.tree_util.tree_map(to_array, params)
    state = opt.init(params)
    for _ in range(100):
        params, state = opt.update(params, quadratic_grads(params, target), state)
    return params


def run_optax(make, lr, params, target):
    opt = make(lr)
    state = opt.init(params)
    for _ in range(100):
        updates, state = opt.update(quadratic_grads(params, target), state, params)
        params = optax.apply_updates(params, updates)
    return params


def assert_trees_close(a, b, tol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


@pytest.mark.parametrize(("ours", "reference"), CASES, ids=IDS)
@pytest.mark.parametrize("to_array", [np.asarray, jnp.asarray], ids=["numpy", "jax"])
def test_matches_optax_over_100_steps(ours, reference, to_array):
    params, target = start(0)
    expected = run_optax(reference, 0.01, params, target)
    got = run_ours(ours, 0.01, params, target, to_array)
    assert_trees_close(got, expected, 1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), lr=st.floats(1e-4, 0.05), which=st.integers(0, len(CASES) - 1))
def test_matches_optax_for_varied_starts(seed, lr, which):
    ours, reference = CASES[which]
    params, target = start(seed)
    assert_trees_close(run_ours(ours, lr, params, target, np.asarray),
                       run_optax(reference, lr, params, target), 1e-6)


def test_rmsprop_keeps_eps_inside_the_root_as_optax_does():
    # Started 1e-4 from the target, the gradients' squares are about eps (1e-8): where eps
    # goes, inside or outside the root, changes every step.
    params, target = start(1)
    near = jax.tree_util.tree_map(lambda p, t: t + 1e-4 * p, params, target)
    ours, reference = CASES[IDS.index("rmsprop")]
    assert_trees_close(run_ours(ours, 1e-5, near, target, np.asarray),
                       run_optax(reference, 1e-5, near, target), 1e-9)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "rmsprop", "adam"])
def test_float32_parameters_stay_float32(name):
    opt = make_optimizer(name, 0.1)
    params = {"w": np.ones((2, 2), np.float32)}
    state = opt.init(params)
    for _ in range(3):
        params, state = opt.update(params, {"w": np.full((2, 2), 0.5, np.float32)}, state)
    assert params["w"].dtype == np.float32


def test_runs_inside_jit_and_scan():
    opt = adam(0.1)
    params = {"w": jnp.ones(3)}

    @jax.jit
    def many_steps(params, state):
        def step(carry, _):
            p, s = carry
            return opt.update(p, {"w": 2 * p["w"]}, s), None

        return jax.lax.scan(step, (params, state), None, length=50)[0]

    final, _ = many_steps(params, opt.init(params))
    reference_state = optax.adam(0.1).init(params)
    p = params
    for _ in range(50):
        updates, reference_state = optax.adam(0.1).update({"w": 2 * p["w"]}, reference_state, p)
        p = optax.apply_updates(p, updates)
    assert_trees_close(final, p, 1e-5)
    assert np.abs(np.asarray(final["w"])).max() < 0.5  # it did move towards 0


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("adagrad", 0.1)
