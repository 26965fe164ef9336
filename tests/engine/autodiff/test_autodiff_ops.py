"""Every op of the home-made autodiff: value and gradient against jax.grad on random inputs."""

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import assert_matches_jax

import engine.autodiff as ad
from engine.autodiff import Tensor


def arrays(shape: tuple[int, ...], low: float = -3.0, high: float = 3.0) -> st.SearchStrategy:
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_subnormal=False))


def away_from_zero(shape: tuple[int, ...]) -> st.SearchStrategy:
    """Values with |x| in [0.2, 3]: kinks (relu, abs) and poles (1/x) stay out of reach."""
    magnitudes = arrays(shape, 0.2, 3.0)
    signs = hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0]))
    return st.tuples(magnitudes, signs).map(lambda ms: ms[0] * ms[1])


# A fixed handful of shapes (values vary freely): every new shape makes jax compile its
# primitives again, which would dominate the suite's time.
small_shapes = st.sampled_from([(), (3,), (2, 3), (2, 1, 3)])
broadcast_pairs = st.sampled_from(
    [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((2, 1, 3), (4, 1))]
)
SETTINGS = settings(max_examples=12, deadline=None)


@pytest.mark.parametrize(
    "op",
    [
        lambda ns, a, b: a + b,
        lambda ns, a, b: a - b,
        lambda ns, a, b: a * b,
        lambda ns, a, b: a / b,
        lambda ns, a, b: ns.abs(a) ** b,
    ],
    ids=["add", "sub", "mul", "div", "pow"],
)
@SETTINGS
@given(data=st.data(), shapes=broadcast_pairs)
def test_binary_ops_broadcast(op: Callable, data: st.DataObject, shapes) -> None:
    a = data.draw(away_from_zero(shapes[0]))
    b = data.draw(away_from_zero(shapes[1]))
    assert_matches_jax(op, a, b)


@pytest.mark.parametrize(
    "op",
    [
        lambda ns, a: -a,
        lambda ns, a: ns.exp(a),
        lambda ns, a: ns.log(ns.abs(a)),
        lambda ns, a: ns.tanh(a),
        lambda ns, a: ns.sigmoid(a * 10),
        lambda ns, a: ns.relu(a),
        lambda ns, a: ns.sin(a),
        lambda ns, a: ns.cos(a),
        lambda ns, a: ns.sqrt(ns.abs(a)),
        lambda ns, a: ns.abs(a),
        lambda ns, a: a**3,
        lambda ns, a: ns.abs(a) ** -1.5,
        lambda ns, a: 2.0**a,
        lambda ns, a: 3 - a,
        lambda ns, a: 2 / a,
        lambda ns, a: 0.5 * a + 1,
    ],
    ids=[
        "neg", "exp", "log", "tanh", "sigmoid", "relu", "sin", "cos", "sqrt", "abs", "cube",
        "neg_frac_power", "rpow", "rsub", "rdiv", "affine",
    ],
)
@SETTINGS
@given(data=st.data(), shape=small_shapes)
def test_elementwise_ops(op: Callable, data: st.DataObject, shape) -> None:
    assert_matches_jax(op, data.draw(away_from_zero(shape)))


def distinct_values(shape: tuple[int, ...]) -> st.SearchStrategy:
    """Arrays without ties, so max has one winner (ties are tested separately)."""
    return hnp.arrays(
        np.float64, shape, elements=st.floats(-3, 3, allow_subnormal=False), unique=True
    )


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
@pytest.mark.parametrize("keepdims", [False, True])
@SETTINGS
@given(data=st.data(), shape=st.sampled_from([(4,), (2, 3), (2, 3, 2)]))
def test_reductions(reduction: str, keepdims: bool, data: st.DataObject, shape) -> None:
    axis = data.draw(
        st.none()
        | st.integers(-len(shape), len(shape) - 1)
        | st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple)
    )
    x = data.draw(distinct_values(shape))
    assert_matches_jax(lambda ns, a: getattr(a, reduction)(axis=axis, keepdims=keepdims), x)


def test_max_shares_the_gradient_between_ties() -> None:
    assert_matches_jax(lambda ns, a: a.max(axis=1), np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [
        ((3, 4), (4, 2)),
        ((2, 3, 4), (4, 5)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((4,), (4, 3)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 3, 4), (4,)),
    ],
)
def test_matmul_shapes(shape_a: tuple, shape_b: tuple) -> None:
    rng = np.random.default_rng(1)
    assert_matches_jax(lambda ns, a, b: a @ b, rng.normal(size=shape_a), rng.normal(size=shape_b))


@SETTINGS
@given(data=st.data())
def test_matmul_random(data: st.DataObject) -> None:
    batch = data.draw(st.sampled_from([(), (2,), (3, 1)]))
    a = data.draw(arrays((*batch, 2, 3)))
    b = data.draw(arrays((3, 4)))
    assert_matches_jax(lambda ns, x, y: x @ y, a, b)


@pytest.mark.parametrize(
    "op",
    [
        lambda ns, a: a.reshape(6, 4),
        lambda ns, a: a.reshape((4, 3, 2)),
        lambda ns, a: a.transpose(2, 0, 1),
        lambda ns, a: a.transpose(),
        lambda ns, a: a.T,
        lambda ns, a: a[1],
        lambda ns, a: a[:, 1:3, ::-1],
        lambda ns, a: a[np.array([0, 1, 1]), np.array([2, 0, 2])],
        lambda ns, a: a[..., np.array([1, 1, 0])],
        lambda ns, a: ns.log_softmax(a),
        lambda ns, a: ns.log_softmax(a, axis=1),
        lambda ns, a: ns.log_softmax(a * 100, axis=0),
    ],
    ids=[
        "reshape", "reshape_tuple", "transpose", "transpose_reverse", "T", "index_int",
        "index_slices", "gather_repeated", "gather_last_axis", "log_softmax",
        "log_softmax_axis1", "log_softmax_large",
    ],
)
def test_shape_ops_indexing_log_softmax(op: Callable) -> None:
    assert_matches_jax(op, np.random.default_rng(2).normal(size=(2, 3, 4)))


@SETTINGS
@given(x=arrays((5, 4)), labels=hnp.arrays(np.int64, 5, elements=st.integers(0, 3)))
def test_cross_entropy_by_gather_and_by_one_hot(x: np.ndarray, labels: np.ndarray) -> None:
    one_hot = np.eye(4)[labels]
    assert_matches_jax(lambda ns, a: -ns.log_softmax(a)[np.arange(5), labels].mean(), x)
    assert_matches_jax(lambda ns, a: -(ns.log_softmax(a) * one_hot).sum(axis=1).mean(), x)


def test_plain_arrays_on_either_side() -> None:
    rng = np.random.default_rng(3)
    x, b = rng.normal(size=(3, 4)), rng.normal(size=2)
    w = rng.normal(size=(4, 2))
    assert_matches_jax(lambda ns, w_: ns.tanh(x @ w_ + b) * x[:, :2] - 1.5 / (2 + w_[0]), w)


def test_float32_stays_float32() -> None:
    w = Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    x = np.ones((4, 3), np.float32)
    out = ad.log_softmax(ad.relu(2.5 * (x @ w) + 1) ** 2 / 3.0 - np.arange(2))
    loss = -(out[np.arange(4), np.array([0, 1, 0, 1])]).mean() * 0.5
    loss.backward()
    assert out.dtype == loss.dtype == w.grad.dtype == np.float32


def test_ints_become_floats_and_constants_have_no_gradient() -> None:
    t = Tensor([1, 2, 3])
    assert t.dtype == np.float64 and not t.requires_grad
    out = t * 2
    assert not out.requires_grad and out.parents == ()


def test_backward_needs_a_scalar() -> None:
    with pytest.raises(ValueError, match="scalar"):
        (Tensor(np.ones(3), requires_grad=True) * 2).backward()
