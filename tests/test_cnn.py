"""The hand-written CNN: convolution against lax.conv_general_dilated, pooling against numpy,
layer shapes, saliency, augmentation and the errors of impossible architectures."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import mnist_digit
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine import cnn
from engine.cnn import ArchitectureError, CNNSpec

conv_ours = jax.jit(cnn.conv2d, static_argnames=("stride", "padding"))
conv_lax = jax.jit(cnn.lax_conv2d, static_argnames=("stride", "padding"))


def conv_value_and_grads(conv, x, kernel, cotangent, stride, padding):
    """Forward output and the gradients of <output, cotangent> wrt the input and the kernel."""
    out, pullback = jax.vjp(lambda a, k: conv(a, k, stride=stride, padding=padding), x, kernel)
    return (out, *pullback(cotangent))


def assert_conv_matches_lax(shape, kernel_shape, stride, padding, seed=0):
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=shape))
        kernel = jnp.asarray(rng.normal(size=kernel_shape))
        expected_out = conv_lax(x, kernel, stride=stride, padding=padding)
        cotangent = jnp.asarray(rng.normal(size=expected_out.shape))
        ours = conv_value_and_grads(conv_ours, x, kernel, cotangent, stride, padding)
        reference = conv_value_and_grads(conv_lax, x, kernel, cotangent, stride, padding)
        for name, a, b in zip(("output", "d input", "d kernel"), ours, reference, strict=True):
            assert a.shape == b.shape, name
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_matches_lax_for_each_padding_and_stride(padding, stride):
    # Odd, non-square sizes: the "same" padding of stride 2 is uneven there.
    assert_conv_matches_lax((2, 7, 9, 3), (3, 3, 3, 4), stride, padding)


@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(1, 2), h=st.integers(1, 9), w=st.integers(1, 9), cin=st.integers(1, 3),
    cout=st.integers(1, 3), kh=st.integers(1, 4), kw=st.integers(1, 4),
    stride=st.sampled_from([1, 2]), padding=st.sampled_from(["same", "valid"]),
    seed=st.integers(0, 2**16),
)
def test_conv_matches_lax_on_varied_shapes(n, h, w, cin, cout, kh, kw, stride, padding, seed):
    assume(padding == "same" or (kh <= h and kw <= w))
    assert_conv_matches_lax((n, h, w, cin), (kh, kw, cin, cout), stride, padding, seed)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv_output_size_matches_lax_shapes(padding):
    for size in range(1, 10):
        for kernel in range(1, size + 1):
            for stride in (1, 2):
                x, k = jax.ShapeDtypeStruct((1, size, 1, 1), jnp.float32), \
                    jax.ShapeDtypeStruct((kernel, 1, 1, 1), jnp.float32)
                lax_out = jax.eval_shape(partial(cnn.lax_conv2d, stride=stride, padding=padding),
                                         x, k).shape[1]
                assert cnn.conv_output_size(size, kernel, stride, padding) == lax_out


def test_conv_of_a_delta_image_draws_the_flipped_kernel():
    # Hand-computed: cross-correlating a single 1 with a kernel paints the kernel upside down.
    image = jnp.zeros((1, 5, 5, 1)).at[0, 2, 2, 0].set(1.0)
    kernel = jnp.arange(9.0).reshape(3, 3, 1, 1)
    out = cnn.conv2d(image, kernel)[0, 1:4, 1:4, 0]
    np.testing.assert_array_equal(out, np.arange(9.0)[::-1].reshape(3, 3))


def pool_reference(x: np.ndarray, kind: str, size: int = 2) -> np.ndarray:
    """Loops over every output position: the window's max or mean, cropping leftover rows."""
    n, h, w, c = x.shape
    out = np.zeros((n, h // size, w // size, c))
    reduce = np.max if kind == "max" else np.mean
    for i in range(h // size):
        for j in range(w // size):
            window = x[:, i * size:(i + 1) * size, j * size:(j + 1) * size, :]
            out[:, i, j, :] = reduce(window, axis=(1, 2))
    return out


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape", [(2, 4, 4, 3), (1, 7, 5, 2), (3, 28, 28, 1)])
def test_pooling_matches_numpy_reference(kind, shape):
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(cnn.pool2d(jnp.asarray(x), kind), pool_reference(x, kind),
                               rtol=1e-6, atol=1e-6)


def test_pooling_a_map_smaller_than_its_window_is_an_architecture_error():
    with pytest.raises(ArchitectureError, match="too small"):
        cnn.pool2d(jnp.zeros((1, 1, 4, 1)))


SPEC = CNNSpec(filters=(3, 5), kernel_size=3, pool="max")


@pytest.fixture(scope="module")
def params():
    return cnn.init_params(jax.random.key(0), SPEC)


def test_init_params_shapes(params):
    assert {name: p.shape for name, p in params.items()} == {
        "conv0_w": (3, 3, 1, 3), "conv0_b": (3,), "conv1_w": (3, 3, 3, 5), "conv1_b": (5,),
        "dense_w": (7 * 7 * 5, 10), "dense_b": (10,)}
    assert all(p.dtype == jnp.float32 for p in params.values())
    # He scaling: the second block's weights have variance 2 / fan_in (fan_in = 3 x 3 x 3).
    assert float(jnp.var(params["conv1_w"])) == pytest.approx(2 / 27, rel=0.3)


def test_init_params_is_deterministic_per_key():
    a, b = (cnn.init_params(jax.random.key(3), SPEC) for _ in range(2))
    c = cnn.init_params(jax.random.key(4), SPEC)
    assert all(jax.tree.leaves(jax.tree.map(jnp.array_equal, a, b)))
    assert not jnp.array_equal(a["conv0_w"], c["conv0_w"])


def test_conv_block_shapes(params):
    activation, pooled = cnn.conv_block(params, 0, jnp.zeros((4, 28, 28, 1)), spec=SPEC)
    assert activation.shape == (4, 28, 28, 3)
    assert pooled.shape == (4, 14, 14, 3)


def test_logits_and_probabilities_shapes(params):
    images = jnp.asarray(np.random.default_rng(0).random((4, 28, 28)), jnp.float32)
    assert cnn.logits(params, images, spec=SPEC).shape == (4, 10)
    probabilities = cnn.predict_proba(params, images, spec=SPEC)
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_logits_with_lax_conv_plugged_in_agree(params):
    images = jnp.asarray(np.random.default_rng(0).random((2, 28, 28)), jnp.float32)
    np.testing.assert_allclose(cnn.logits(params, images, spec=SPEC),
                               cnn.logits(params, images, spec=SPEC, conv=cnn.lax_conv2d),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("spec", "sizes"),
    [
        (CNNSpec((3, 5), 3, pool="max"), [(28, 28, 3), (14, 14, 5)]),
        (CNNSpec((2,), 5, pool="none", padding="valid"), [(24, 24, 2)]),
        (CNNSpec((2, 2, 2), 3, pool="avg", padding="valid"), [(26, 26, 2), (11, 11, 2),
                                                              (3, 3, 2)]),
    ],
)
def test_feature_maps_one_per_block_before_pooling(spec, sizes):
    p = cnn.init_params(jax.random.key(1), spec)
    maps = cnn.feature_maps(p, jnp.asarray(mnist_digit(3) / 255.0), spec=spec)
    assert [m.shape for m in maps] == sizes
    assert all(float(m.min()) >= 0 for m in maps)  # after ReLU


def test_saliency_has_the_input_shape_and_lights_up_the_ink(params):
    image = mnist_digit(7) / 255.0
    grad = np.asarray(cnn.saliency(params, jnp.asarray(image), 7, spec=SPEC))
    assert grad.shape == (28, 28)
    ink = image > 0.5
    assert np.abs(grad[ink]).sum() > 0


def test_saliency_is_the_gradient_of_the_class_score(params):
    # A central difference along a random direction is an independent check of jax.grad's answer.
    # On a noise image in float64 no ReLU sits on its kink and no max-pool window has a tie (a
    # blank MNIST background ties every window, where the derivative is one-sided).
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        p64 = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        image, direction = jnp.asarray(rng.random((28, 28))), jnp.asarray(rng.normal(size=(28, 28)))
        grad = cnn.saliency(p64, image, 2, spec=SPEC)
        eps = 1e-6

        def score(img):
            return cnn.logits(p64, img[None], spec=SPEC)[0, 2]

        numeric = (score(image + eps * direction) - score(image - eps * direction)) / (2 * eps)
        assert grad.dtype == jnp.float64
        np.testing.assert_allclose(float((grad * direction).sum()), float(numeric), rtol=1e-6)


def test_dropout_needs_a_key_and_only_acts_in_training():
    spec = CNNSpec((2,), 3, dropout=0.5)
    p = cnn.init_params(jax.random.key(0), spec)
    images = jnp.asarray(mnist_digit(1)[None] / 255.0, jnp.float32)
    with pytest.raises(ValueError, match="RNG key"):
        cnn.logits(p, images, spec=spec, train=True)
    evaluation = cnn.logits(p, images, spec=spec)
    np.testing.assert_array_equal(evaluation, cnn.logits(p, images, spec=spec))
    trained = cnn.logits(p, images, spec=spec, train=True, key=jax.random.key(5))
    assert not jnp.allclose(trained, evaluation)


def test_dropout_keeps_the_expected_value():
    x = jnp.ones((200, 100))
    dropped = cnn.dropout(jax.random.key(0), x, 0.25)
    assert 0.2 < float((dropped == 0).mean()) < 0.3
    assert float(dropped.mean()) == pytest.approx(1.0, abs=0.05)


def test_random_shift_moves_each_image_by_at_most_max_shift():
    images = jnp.asarray(np.stack([mnist_digit(d) for d in range(6)]) / 255.0, jnp.float32)
    shifted = np.asarray(cnn.random_shift(jax.random.key(0), images, 2))
    assert shifted.shape == images.shape
    for original, moved in zip(np.asarray(images), shifted, strict=True):
        padded = np.pad(original, 2)
        candidates = [padded[2 + dy:30 + dy, 2 + dx:30 + dx]
                      for dy in range(-2, 3) for dx in range(-2, 3)]
        assert any(np.array_equal(moved, c) for c in candidates)
    assert not np.array_equal(shifted, np.asarray(images))  # 6 images, 25 offsets: some moved


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": ()}, "at least one conv block"),
        ({"filters": (8, 0)}, "at least one filter"),
        ({"kernel_size": 0}, "kernel size"),
        ({"filters": (4,), "kernel_size": 29}, "block 1: a 29x29 kernel is larger than its 28x28"),
        ({"filters": (4,) * 5, "kernel_size": 1}, "4 blocks shrink 28x28 to 1x1"),
        ({"filters": (4,) * 3, "kernel_size": 5, "padding": "valid"},
         "block 3: a 5x5 kernel is larger than its 4x4"),
        ({"pool": "median"}, "pool must be one of"),
        ({"padding": "full"}, "padding must be one of"),
        ({"dropout": 1.0}, "dropout rate"),
    ],
)
def test_impossible_specs_say_what_is_wrong(kwargs, message):
    with pytest.raises(ArchitectureError, match=message):
        CNNSpec(**kwargs)


def test_spec_describes_itself_and_its_map_sizes():
    spec = CNNSpec((8, 16), 3, pool="max", dropout=0.25)
    assert spec.describe() == ("conv 3x3x8 - ReLU - maxpool 2 - conv 3x3x16 - ReLU - maxpool 2 - "
                               "dropout 0.25 - dense 10")
    assert spec.map_sizes() == [14, 7]
    assert hash(spec) == hash(CNNSpec((8, 16), 3, pool="max", dropout=0.25))
