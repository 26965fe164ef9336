"""One training step phase by phase: every matrix against the engine's forward, jax.grad, optax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ffnn
from engine.explain.step_phases import activation_and_slope, cell_sum, step_phases
from engine.nn.layers import ACTIVATIONS, JAX_OPS, activation, dense
from engine.nn.losses import loss_function


def tiny_case(seed: int, batch: int, act: str, hidden=(6, 4)):
    """(arch, params, images (batch, 28, 28) in [0, 1], labels (batch,)) drawn from `seed`."""
    arch = ffnn.Architecture(hidden, act)
    params = ffnn.init_params(jax.random.PRNGKey(seed), arch)
    rng = np.random.default_rng(seed)
    params = {k: v + rng.normal(0, 0.1, v.shape).astype(np.float32) for k, v in params.items()}
    images = rng.random((batch, 28, 28)).astype(np.float32)
    return arch, params, images, rng.integers(0, 10, batch)


FLOAT32_SUMS = 1e-5  # float32 rounding of a sum of up to a few hundred terms, relative to the terms


def close_in_float32(ours, reference, terms):
    """Equal up to what float32 can promise for sums computed in another order: the difference
    at most FLOAT32_SUMS of the largest sum of |terms| behind a value (a sum that cancels to
    near zero keeps the rounding of its large terms, so the result's own size is no scale).
    terms: an array of the same values' sums of absolute terms."""
    scale = float(np.abs(np.asarray(terms)).max())
    np.testing.assert_allclose(ours, reference, rtol=0, atol=FLOAT32_SUMS * scale + 1e-12)


def jax_deltas(params, images, labels, arch, loss_name):
    """dL/dz of every layer from jax.grad: a zero added to each z, differentiated."""

    def loss_of_shifts(shifts):
        nonlinearity, h = activation(JAX_OPS, arch.activation), images.reshape(len(images), -1)
        for i in range(arch.n_layers):
            h = dense(h, params[f"w{i}"], params[f"b{i}"]) + shifts[i]
            if i < arch.n_layers - 1:
                h = nonlinearity(h)
        return loss_function(loss_name)(JAX_OPS, h, labels)

    sizes = arch.layer_sizes[1:]
    return jax.grad(loss_of_shifts)([jnp.zeros((len(images), n)) for n in sizes])


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 5), act=st.sampled_from(ACTIVATIONS),
       loss_name=st.sampled_from(["cross_entropy", "mse"]))
def test_every_phase_matches_the_engine_and_jax(seed, batch, act, loss_name):
    arch, params, images, labels = tiny_case(seed, batch, act)
    phases = step_phases(params, images, labels, arch=arch, loss_name=loss_name)
    # forward: the engine's own logits; every hidden activation by the engine's layers
    np.testing.assert_allclose(phases.logits, ffnn.forward(params, images, arch=arch),
                               rtol=1e-5, atol=1e-5)
    h = images.reshape(batch, -1)
    for i, layer in enumerate(phases.layers[:-1]):
        h = activation(JAX_OPS, act)(dense(h, params[f"w{i}"], params[f"b{i}"]))
        np.testing.assert_allclose(layer.a_out, h, rtol=1e-5, atol=1e-6)
    # loss: the engine's loss
    expected = ffnn.loss(params, images, labels, arch=arch, loss_name=loss_name)
    assert phases.loss == pytest.approx(float(expected), rel=1e-5)
    # backward: every delta and every gradient, by hand vs jax.grad
    grads = jax.grad(ffnn.loss)(params, images, labels, arch=arch, loss_name=loss_name)
    deltas = jax_deltas(params, images, labels, arch, loss_name)
    for i, (layer, delta) in enumerate(zip(phases.layers, deltas, strict=True)):
        # each delta is a sum over the next layer's deltas through its weights; the last one
        # (dL/dlogits) is its own scale
        above = (np.abs(deltas[i + 1]) @ np.abs(params[f"w{i + 1}"]).T
                 if i + 1 < len(deltas) else np.abs(delta))
        close_in_float32(layer.delta, delta, above)
        weight_terms = np.abs(layer.a_in).T @ np.abs(delta)  # dw = a_in^T delta
        close_in_float32(layer.dw, grads[f"w{i}"], weight_terms)
        close_in_float32(layer.db, grads[f"b{i}"], np.abs(delta).sum(axis=0))
        assert layer.max_gradient_difference <= FLOAT32_SUMS * max(
            weight_terms.max(), np.abs(delta).sum(axis=0).max()) + 1e-12


@pytest.mark.parametrize("name, reference", [("sgd", optax.sgd(0.05)), ("adam", optax.adam(0.05)),
                                             ("momentum", optax.sgd(0.05, momentum=0.9))])
def test_the_update_is_the_optimizers_first_step(name, reference):
    arch, params, images, labels = tiny_case(3, 4, "relu")
    phases = step_phases(params, images, labels, arch=arch, optimizer=name, learning_rate=0.05)
    grads = jax.grad(ffnn.loss)(params, images, labels, arch=arch, loss_name="cross_entropy")
    updates, _ = reference.update(grads, reference.init(params), params)
    after = optax.apply_updates(params, updates)
    for i, layer in enumerate(phases.layers):
        np.testing.assert_allclose(layer.w, params[f"w{i}"])
        np.testing.assert_allclose(layer.w_after, after[f"w{i}"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer.b_after, after[f"b{i}"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activation_slopes_are_central_differences(act):
    z = np.linspace(-3, 3, 12, dtype=np.float32)  # 0 not sampled: relu has no slope there
    value, slope = activation_and_slope(act, z)
    np.testing.assert_allclose(value, activation(JAX_OPS, act)(z), rtol=1e-6, atol=1e-6)
    h = 1e-3
    up, down = (np.asarray(activation(JAX_OPS, act)(jnp.asarray(z + s, jnp.float32)), float)
                for s in (h, -h))
    np.testing.assert_allclose(slope, (up - down) / (2 * h), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("kind, layer, row, col", [("z", 1, 2, 5), ("z", 3, 0, 9),
                                                   ("dw", 1, 400, 3), ("dw", 2, 5, 1),
                                                   ("delta", 1, 1, 4), ("delta", 2, 3, 0)])
def test_a_cells_sum_reproduces_the_cell(kind, layer, row, col):
    arch, params, images, labels = tiny_case(7, 4, "tanh")
    phases = step_phases(params, images, labels, arch=arch)
    cell = cell_sum(phases, kind, layer, row, col)
    assert (cell.terms.sum() + cell.offset) * cell.factor == pytest.approx(cell.value, rel=1e-4,
                                                                          abs=1e-7)
    top = cell.top(3)
    assert abs(cell.terms[top[0]]) == np.abs(cell.terms).max()
    assert list(np.abs(cell.terms[top])) == sorted(np.abs(cell.terms[top]), reverse=True)


@pytest.mark.parametrize("kind, layer, row, col, words", [
    ("z", 1, 4, 0, "row 0 to 3"), ("z", 1, 0, 6, "column 0 to 5"), ("dw", 4, 0, 0, "1 to 3"),
    ("delta", 3, 0, 0, "1 to 2"), ("z", 1, -1, 0, "row 0 to 3")])
def test_cells_outside_the_matrix_are_refused(kind, layer, row, col, words):
    arch, params, images, labels = tiny_case(7, 4, "relu")
    phases = step_phases(params, images, labels, arch=arch)
    with pytest.raises(IndexError, match=words):
        cell_sum(phases, kind, layer, row, col)


def test_an_empty_or_mislabelled_batch_is_refused():
    arch, params, images, labels = tiny_case(1, 2, "relu")
    with pytest.raises(ValueError, match="empty"):
        step_phases(params, images[:0], labels[:0], arch=arch)
    with pytest.raises(ValueError, match="digits 0-9"):
        step_phases(params, images, np.array([3, 10]), arch=arch)
