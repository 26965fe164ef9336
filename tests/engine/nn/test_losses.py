"""Losses against optax, on both backends, for varied logits (hypothesis)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.autodiff import Tensor
from engine.nn.layers import JAX_OPS, autodiff_ops
from engine.nn.losses import mse_one_hot, softmax_cross_entropy

# One shape, so each JAX function compiles once; hypothesis varies the values.
LOGITS = arrays(np.float64, (6, 10), elements=st.floats(-30, 30))


def labels_for(logits: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, logits.shape[1], size=logits.shape[0])


@jax.jit
def reference_cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@jax.jit
def reference_mse(logits, labels):
    one_hot = jax.nn.one_hot(labels, logits.shape[1])
    return optax.squared_error(jax.nn.softmax(logits), one_hot).sum(-1).mean()


@settings(max_examples=30, deadline=None)
@given(logits=LOGITS, seed=st.integers(0, 1000))
def test_cross_entropy_matches_optax_on_both_backends(logits, seed):
    labels = labels_for(logits, seed)
    with jax.enable_x64(True):
        expected = float(reference_cross_entropy(jnp.asarray(logits), labels))
        on_jax = float(jax.jit(softmax_cross_entropy, static_argnums=0)(JAX_OPS, logits, labels))
    on_ours = softmax_cross_entropy(autodiff_ops(), Tensor(logits), labels).item()
    np.testing.assert_allclose([on_jax, on_ours], expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(logits=LOGITS, seed=st.integers(0, 1000))
def test_mse_matches_optax_on_both_backends(logits, seed):
    labels = labels_for(logits, seed)
    with jax.enable_x64(True):
        expected = float(reference_mse(jnp.asarray(logits), labels))
        on_jax = float(jax.jit(mse_one_hot, static_argnums=0)(JAX_OPS, logits, labels))
    on_ours = mse_one_hot(autodiff_ops(), Tensor(logits), labels).item()
    np.testing.assert_allclose([on_jax, on_ours], expected, rtol=1e-9, atol=1e-12)


def test_loss_gradients_match_jax():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(5, 10)) * 3, rng.integers(0, 10, 5)
    for loss, reference in ((softmax_cross_entropy, reference_cross_entropy),
                            (mse_one_hot, reference_mse)):
        with jax.enable_x64(True):
            expected = jax.grad(reference)(jnp.asarray(logits), labels)
        tensor = Tensor(logits, requires_grad=True)
        loss(autodiff_ops(), tensor, labels).backward()
        np.testing.assert_allclose(tensor.grad, expected, rtol=1e-9, atol=1e-12)


def test_cross_entropy_of_a_sure_right_answer_is_near_zero_and_of_a_wrong_one_large():
    logits = np.array([[20.0, 0.0, 0.0], [20.0, 0.0, 0.0]])
    right = float(softmax_cross_entropy(JAX_OPS, jnp.asarray(logits), np.array([0, 0])))
    wrong = float(softmax_cross_entropy(JAX_OPS, jnp.asarray(logits), np.array([1, 1])))
    assert right < 1e-6
    assert abs(wrong - 20.0) < 1e-4
