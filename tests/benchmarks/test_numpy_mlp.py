"""The hand-derived numpy MLP of the benchmarks (R1/R2 reference) against jax.grad and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import numpy_mlp


def jax_loss(params: dict, x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    h = jax.nn.relu(x @ params["w0"] + params["b0"])
    logits = h @ params["w1"] + params["b1"]
    return -jax.nn.log_softmax(logits)[jnp.arange(len(y)), y].mean()


def small_problem(dtype: type) -> tuple[dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    params = {k: v.astype(dtype) for k, v in numpy_mlp.init_params(1, (12, 7, 4)).items()}
    params["b0"] = rng.normal(size=7).astype(dtype)  # non-zero, so the bias gradient matters
    return params, rng.normal(size=(9, 12)).astype(dtype), rng.integers(0, 4, 9)


def test_hand_derived_gradients_match_jax() -> None:
    params, x, y = small_problem(np.float64)
    loss, grads = numpy_mlp.loss_and_grads(params, x, y)
    with jax.enable_x64(True):
        expected_loss, expected = jax.value_and_grad(jax_loss)(params, x, y)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    assert grads.keys() == params.keys()
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, expected[name], rtol=1e-6, atol=1e-12)


def test_float32_in_float32_out() -> None:
    params, x, y = small_problem(np.float32)
    _, grads = numpy_mlp.loss_and_grads(params, x, y)
    assert all(g.dtype == np.float32 for g in grads.values())


def test_momentum_epoch_matches_optax() -> None:
    params, x, y = small_problem(np.float64)
    theirs = {k: jnp.asarray(v) for k, v in params.items()}
    optimizer = optax.sgd(0.1, momentum=0.9)
    state = optimizer.init(theirs)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    order = np.array([3, 1, 4, 0, 8, 2, 7, 5, 6])
    with jax.enable_x64(True):
        numpy_mlp.run_epoch(numpy_mlp.loss_and_grads, params, velocity, x, y, order, batch_size=3)
        for start in (0, 3, 6):
            idx = order[start:start + 3]
            updates, state = optimizer.update(jax.grad(jax_loss)(theirs, x[idx], y[idx]), state)
            theirs = optax.apply_updates(theirs, updates)
    for name, value in params.items():
        np.testing.assert_allclose(value, theirs[name], rtol=1e-6, atol=1e-12)
