"""Our autodiff against jax: the same function on our Tensors and in jax, value and gradient
(shared by the autodiff tests and the break-it lab's)."""

from collections.abc import Callable
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

import engine.autodiff as ad
from engine.autodiff import Tensor

RTOL, ATOL = 1e-6, 1e-9

# The same op names on both sides, so each test writes its function once.
OURS = SimpleNamespace(
    exp=ad.exp, log=ad.log, tanh=ad.tanh, sigmoid=ad.sigmoid, relu=ad.relu, sin=ad.sin,
    cos=ad.cos, sqrt=ad.sqrt, abs=ad.absolute, log_softmax=ad.log_softmax,
)
JAX = SimpleNamespace(
    exp=jnp.exp, log=jnp.log, tanh=jnp.tanh, sigmoid=jax.nn.sigmoid, relu=jax.nn.relu,
    sin=jnp.sin, cos=jnp.cos, sqrt=jnp.sqrt, abs=jnp.abs, log_softmax=jax.nn.log_softmax,
)


def assert_matches_jax(fn: Callable, *arrays: np.ndarray) -> None:
    """fn(ns, *inputs) on our Tensors and on jax: same value, same gradient of a weighted sum."""
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(OURS, *inputs)
    # A random weighting makes every output element matter differently to the loss.
    weights = np.random.default_rng(0).normal(size=out.shape)
    (out * weights).sum().backward()
    with jax.enable_x64(True):
        expected = fn(JAX, *map(jnp.asarray, arrays))
        grads = jax.grad(
            lambda *xs: (fn(JAX, *xs) * weights).sum(), argnums=tuple(range(len(arrays)))
        )(*map(jnp.asarray, arrays))
    np.testing.assert_allclose(out.data, expected, rtol=RTOL, atol=ATOL)
    for tensor, grad in zip(inputs, grads, strict=True):
        assert tensor.grad.shape == tensor.shape
        np.testing.assert_allclose(tensor.grad, grad, rtol=RTOL, atol=ATOL)
