"""The hand-written CNN: convolution against lax.conv_general_dilated, pooling against numpy,
layer shapes, saliency, augmentation, the errors of impossible architectures, training runs,
model files, and the committed default model."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import mnist_digit
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine import cnn
from engine.app.assets import default_model_path
from engine.app.settings import Limits
from engine.cnn import ArchitectureError, CNNSpec
from engine.cnn.layers import conv2d_chwn, conv_relu_pool_direct, swap_batch_and_channels
from engine.data.mnist import Split, as_float, embedded_split, load_embedded
from engine.models import checkpoint
from engine.models.checkpoint import CheckpointError
from engine.training import loop

conv_ours = jax.jit(cnn.conv2d, static_argnames=("stride", "padding"))
conv_lax = jax.jit(cnn.lax_conv2d, static_argnames=("stride", "padding"))
LAX_CHWN = partial(cnn.lax_conv2d, layout="CHWN")  # what `logits` takes to swap its convolution


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


@settings(max_examples=8, deadline=None)
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


@pytest.mark.parametrize(("stride", "padding", "out"), [(1, "same", (7, 9)), (2, "same", (4, 5)),
                                                     (1, "valid", (5, 7)), (2, "valid", (3, 4))])
def test_im2col_stacks_one_channel_block_per_kernel_offset(stride, padding, out):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 7, 9, 2)), jnp.float32)  # CHWN
    cols = cnn.im2col(x, 3, 3, stride=stride, padding=padding)
    assert cols.shape == (3 * 3 * 3, *out, 2)
    if padding == "valid":  # offset (i, j) is channels [(3i + j) * 3, +3): the pixel (i, j) away
        np.testing.assert_array_equal(cols[(3 * 1 + 2) * 3:(3 * 1 + 2) * 3 + 3, 0, 0, :],
                                      x[:, 1, 2, :])


def test_channels_first_conv_matches_lax_in_that_layout():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(3, 7, 9, 2)), jnp.float32)  # (C, H, W, N)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
    for stride, padding in [(1, "same"), (2, "valid")]:
        np.testing.assert_allclose(
            conv2d_chwn(x, kernel, stride=stride, padding=padding),
            cnn.lax_conv2d(x, kernel, stride=stride, padding=padding, layout="CHWN"),
            rtol=1e-5, atol=1e-5)


def test_pooling_is_the_same_in_either_layout():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 7, 6, 3)), jnp.float32)
    for kind in ("max", "avg"):
        np.testing.assert_array_equal(
            cnn.pool2d(swap_batch_and_channels(x), kind),
            swap_batch_and_channels(cnn.pool2d(x, kind)))


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


def lax_max_pool(x: jax.Array) -> jax.Array:
    """The library's 2x2 max pooling of x (N, H, W, C), leftover rows and columns dropped."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 3),
       levels=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_max_pooling_gradient_goes_to_the_first_maximum_as_lax_reduce_window_sends_it(
        n, h, w, c, levels, seed):
    # Values from a few levels, so most windows hold ties (one level: every window is a tie):
    # each window's gradient must land on its first maximum in row-major order, as the
    # gradient of lax.reduce_window's max puts it, and nowhere in the cropped rows/columns.
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.integers(0, levels, size=(n, h, w, c)), jnp.float32)
    weights = jnp.asarray(rng.normal(size=(n, h // 2, w // 2, c)), jnp.float32)
    ours = jax.grad(lambda x: jnp.sum(weights * cnn.pool2d(x, "max")))(x)
    reference = jax.grad(lambda x: jnp.sum(weights * lax_max_pool(x)))(x)
    np.testing.assert_array_equal(ours, reference)


def test_max_pooling_gradient_in_the_channels_first_layout():
    # CHWN pools the same axes; a tie in every window (all ones) puts each window's gradient
    # on its top-left corner.
    x = jnp.ones((2, 4, 6, 3))  # (C, H, W, N)
    grad = jax.grad(lambda x: jnp.sum(cnn.pool2d(x, "max")))(x)
    corners = np.zeros((4, 6), np.float32)
    corners[::2, ::2] = 1.0
    np.testing.assert_array_equal(grad, np.broadcast_to(corners[None, :, :, None], x.shape))


@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9), cin=st.integers(1, 2),
    cout=st.integers(1, 3), k=st.integers(1, 5), pool=st.sampled_from(["max", "avg", "none"]),
    padding=st.sampled_from(["same", "valid"]), seed=st.integers(0, 2**16),
)
@pytest.mark.slow
def test_direct_conv_relu_pool_matches_lax_conv_then_numpy_pooling(n, h, w, cin, cout, k, pool,
                                                                  padding, seed):
    # The landscape's first block: shifted multiply-adds per pooling phase, against the
    # library's convolution, a ReLU and the loop-by-loop pooling, odd sizes and both paddings.
    step = 1 if pool == "none" else 2
    assume(cnn.conv_output_size(h, k, 1, padding) >= step)
    assume(cnn.conv_output_size(w, k, 1, padding) >= step)
    check_direct_conv_relu_pool(n, h, w, cin, cout, k, pool, padding, seed)


@pytest.mark.parametrize("pool", ["max", "avg", "none"])
def test_direct_conv_relu_pool_of_one_odd_sized_batch(pool):
    # The slow test's quick sibling: one batch of 7x6 maps, each pooling kind.
    check_direct_conv_relu_pool(2, 7, 6, 2, 3, 3, pool, "same", 0)


def check_direct_conv_relu_pool(n, h, w, cin, cout, k, pool, padding, seed):
    """conv_relu_pool_direct of random x (cin, h, w, n) and a k x k kernel (cin -> cout) equals
    lax's convolution, a ReLU and the loop-by-loop pooling."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(cin, h, w, n)).astype(np.float32)  # CHWN
    kernel = rng.normal(size=(k, k, cin, cout)).astype(np.float32)
    bias = rng.normal(size=cout).astype(np.float32)
    conv = cnn.lax_conv2d(jnp.asarray(x), jnp.asarray(kernel), padding=padding, layout="CHWN")
    activation = np.maximum(np.asarray(conv) + bias[:, None, None, None], 0)
    nhwc = swap_batch_and_channels(activation)
    expected = nhwc if pool == "none" else pool_reference(np.asarray(nhwc), pool)
    ours = conv_relu_pool_direct(jnp.asarray(x), jnp.asarray(kernel), jnp.asarray(bias),
                                 pool=pool, padding=padding)
    np.testing.assert_allclose(swap_batch_and_channels(ours), expected, rtol=1e-5, atol=1e-5)


def test_direct_conv_relu_pool_names_what_does_not_fit():
    with pytest.raises(ArchitectureError, match="too small"):
        conv_relu_pool_direct(jnp.zeros((1, 3, 3, 1)), jnp.zeros((3, 3, 1, 2)), jnp.zeros(2),
                              pool="max", padding="valid")
    with pytest.raises(ValueError, match="pool kind"):
        conv_relu_pool_direct(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 2)), jnp.zeros(2),
                              pool="median")


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
                               cnn.logits(params, images, spec=SPEC, conv=LAX_CHWN),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_training_gradients_with_lax_conv_plugged_in_agree(params):
    # The whole forward and backward pass (blocks, pooling, dense head), not only one conv.
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.random((3, 28, 28)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, 3))

    def loss(p, conv):
        scores = cnn.logits(p, images, spec=SPEC, conv=conv)
        return -jnp.mean(jax.nn.log_softmax(scores)[jnp.arange(3), labels])

    ours = jax.grad(partial(loss, conv=conv2d_chwn))(params)
    reference = jax.grad(partial(loss, conv=LAX_CHWN))(params)
    for name in params:
        np.testing.assert_allclose(ours[name], reference[name], rtol=1e-4, atol=1e-5,
                                   err_msg=name)


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
    evaluate = jax.jit(partial(cnn.logits, spec=spec))
    train = jax.jit(partial(cnn.logits, spec=spec, train=True))
    # Evaluation is the same net without dropout: no unit dropped, none rescaled.
    without = jax.jit(partial(cnn.logits, spec=CNNSpec((2,), 3, dropout=0.0)))
    np.testing.assert_allclose(evaluate(p, images), without(p, images), rtol=1e-6, atol=1e-6)
    assert not jnp.allclose(train(p, images, key=jax.random.key(5)), evaluate(p, images))


def test_dropout_keeps_the_expected_value():
    x = jnp.ones((200, 100))
    dropped = cnn.dropout(jax.random.key(0), x, 0.25)
    assert dropped.shape == x.shape
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


def test_parse_filters_reads_comma_separated_whole_numbers():
    assert cnn.parse_filters(" 16, 32 ") == (16, 32)
    assert cnn.parse_filters("8;8") == (8, 8)
    with pytest.raises(ArchitectureError, match="whole numbers"):
        cnn.parse_filters("16, many")


# ----------------------------------------------------------------------------- training

def test_cosine_scale_glides_from_one_to_zero():
    scales = [float(loop.cosine_scale(jnp.asarray(s), 10)) for s in (0, 5, 10)]
    assert scales == pytest.approx([1.0, 0.5, 0.0], abs=1e-6)


def test_chunks_divide_the_epoch_when_a_divisor_is_near():
    config = cnn.TrainingConfig()
    flops = cnn.step_flops(config.spec, config.batch_size)
    target = loop.CHUNK_SECONDS * loop.STEP_THROUGHPUT["jax"] / flops
    steps = loop.chunk_steps(flops, 57, evals_per_epoch=2)  # 3,700 // 64 = 57 = 3 x 19
    assert 57 % steps == 0 and 1 / 3 <= steps / target <= 2 and steps <= 57 // 2


def test_step_flops_count_six_per_multiply_add_per_example():
    # conv 3x3x2 on 28x28 ("same"), maxpool to 14x14, dense 14*14*2 -> 10; batch 2.
    macs = 3 * 3 * 1 * 2 * 28 * 28 + 14 * 14 * 2 * 10
    assert cnn.step_flops(CNNSpec((2,)), 2) == 6 * macs * 2


def test_limits_refuse_too_many_filters_epochs_or_a_too_large_batch():
    config = cnn.TrainingConfig(CNNSpec((8, 128)), epochs=99, batch_size=5000)
    problems = " ".join(cnn.limit_problems(config, Limits(max_filters=64, max_epochs=50,
                                                          max_batch_size=1024)))
    assert "128 filters" in problems and "99 epochs" in problems and "batch of 5000" in problems
    assert cnn.limit_problems(cnn.TrainingConfig(), Limits()) == []


def test_bad_run_settings_are_refused():
    with pytest.raises(ValueError, match="optimizer"):
        cnn.check_config(cnn.TrainingConfig(optimizer="lbfgs"))
    with pytest.raises(ValueError, match="learning rate"):
        cnn.check_config(cnn.TrainingConfig(learning_rate=0.0))


def tiny_split(per_class: int = 12):
    """A small split of real digits: per_class training digits of each class, 20 for eval."""
    images, labels = load_embedded()
    train = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
    held = np.concatenate([np.flatnonzero(labels == c)[-2:] for c in range(10)])
    return Split(images[train], labels[train], images[held], labels[held], images[held],
                 labels[held])


def test_a_short_run_lowers_the_loss_and_records_a_snapshot_per_evaluation():
    config = cnn.TrainingConfig(CNNSpec((4,)), learning_rate=3e-3, batch_size=24, epochs=4,
                                max_shift=1)
    follow = mnist_digit(4) / 255.0
    events = list(cnn.training_run(config, tiny_split(), follow=follow))
    final = events[-1]
    assert final.status == "finished"
    losses = final.history.losses
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    snapshots = final.history.snapshots
    assert len(snapshots) == len(final.history.eval_steps) >= 4
    assert final.history.snapshot_steps == final.history.eval_steps
    assert final.snapshot is snapshots[-1]
    assert snapshots[-1].filters.shape == (4, 3, 3)
    assert snapshots[-1].probabilities.shape == (10,)
    assert not np.array_equal(snapshots[0].filters, snapshots[-1].filters)  # the filters learn
    assert set(final.params) == set(CNNSpec((4,)).param_shapes())


def test_a_uint8_image_means_the_same_as_its_float_version():
    """One as_float: uint8 pixels are 0-255 and become /255; floats in [0, 1] pass through."""
    spec = CNNSpec((2,))
    params = cnn.init_params(jax.random.key(1), spec)
    pixels = mnist_digit(3)[None]
    assert pixels.dtype == np.uint8
    np.testing.assert_allclose(cnn.logits(params, pixels, spec=spec),
                               cnn.logits(params, pixels / np.float32(255), spec=spec), rtol=1e-6)
    np.testing.assert_array_equal(cnn.predict_labels(params, pixels, spec=spec),
                                  cnn.predict_labels(params, as_float(pixels), spec=spec))
    with pytest.raises(TypeError, match="uint8"):
        cnn.logits(params, pixels.astype(np.int64), spec=spec)


def test_running_again_with_the_same_settings_reuses_the_compiled_chunk():
    config = cnn.TrainingConfig(CNNSpec((2,)), batch_size=40, epochs=1)
    list(cnn.training_run(config, tiny_split()))
    hits = loop.compiled_chunk.cache_info().hits
    final = list(cnn.training_run(config, tiny_split()))[-1]
    assert loop.compiled_chunk.cache_info().hits > hits
    assert final.model.kind == "cnn" and final.model.architecture == config.spec


def test_training_is_deterministic_for_a_seed():
    config = cnn.TrainingConfig(CNNSpec((2,), dropout=0.5), batch_size=40, epochs=1, seed=3)
    a, b = (list(cnn.training_run(config, tiny_split()))[-1] for _ in range(2))
    assert a.history.losses == b.history.losses
    np.testing.assert_array_equal(a.params["conv0_w"], b.params["conv0_w"])


@pytest.mark.slow
def test_the_decay_scales_the_optimizers_move():
    # With decay, step t moves by cosine_scale(t) times the move without it: compare one step.
    split = tiny_split()
    params = cnn.init_params(jax.random.key(0), CNNSpec((2,)))
    moves = []
    for decay in (False, True):
        config = cnn.TrainingConfig(CNNSpec((2,)), optimizer="sgd", learning_rate=0.1,
                                    batch_size=40, epochs=1, max_shift=0, cosine_decay=decay)
        stepper = loop.jax_stepper(cnn.step_rule(config, 3), split.x_train, split.y_train,
                                       jax.random.key(0))
        state = stepper.init(params)
        state["step"] = jnp.asarray(1, jnp.int32)  # total steps = 3: scale(1) = 0.75
        new, _, _ = stepper.run(params, state, np.arange(40, dtype=np.int32)[None])
        moves.append(new["dense_w"] - params["dense_w"])
    np.testing.assert_allclose(moves[1], 0.75 * moves[0], rtol=1e-4, atol=1e-7)


def test_a_model_file_round_trips_and_a_wrong_one_is_refused():
    spec = CNNSpec((3,), 5, pool="avg")
    params = cnn.init_params(jax.random.key(2), spec)
    data = cnn.checkpoint_bytes(spec, params, metrics={"test_accuracy": 0.5})
    spec_back, params_back, metadata = cnn.read_checkpoint(data)
    assert spec_back == spec and metadata["metrics"]["test_accuracy"] == 0.5
    for name, value in params.items():
        np.testing.assert_array_equal(params_back[name], value)
    wrong = {**{k: np.asarray(v) for k, v in params.items()}, "dense_w": np.zeros((3, 10),
                                                                                 np.float32)}
    with pytest.raises(CheckpointError, match="dense_w"):
        cnn.read_checkpoint(cnn.checkpoint_bytes(spec, wrong))
    impossible = {**spec.to_metadata(), "filters": [3, 3, 3, 3]}  # 28 -> 14 -> 7 -> 3 < 5
    data = checkpoint.to_bytes({}, {"model": "cnn", "architecture": impossible})
    with pytest.raises(CheckpointError, match="unusable: 'block 4: a 5"):
        cnn.read_checkpoint(data)


def test_the_default_model_scores_at_least_97_5_percent_on_the_test_digits():
    spec, params, metadata = cnn.read_checkpoint(default_model_path("cnn").read_bytes())
    split = embedded_split()
    predicted = cnn.predict_labels(params, as_float(split.x_test), spec=spec)
    accuracy = float(np.mean(predicted == split.y_test))
    assert accuracy >= 0.975
    assert accuracy == pytest.approx(metadata["metrics"]["test_accuracy"], abs=1e-9)
    assert metadata["trained_on"] == "embedded train split"


def test_many_images_go_in_bounded_batches_with_the_same_answers():
    """Past EVAL_BATCH images, batched_proba pads the last batch; the answers are those of one
    call over all of them (a Model's predict_proba goes through it)."""
    from engine.cnn.model import EVAL_BATCH

    spec = CNNSpec((2,))
    params = cnn.init_params(jax.random.key(2), spec)
    images = as_float(embedded_split().x_test[: EVAL_BATCH + 7])
    batched = cnn.batched_proba(params, images, spec=spec)
    assert batched.shape == (EVAL_BATCH + 7, 10)
    np.testing.assert_allclose(batched, cnn.predict_proba(params, images, spec=spec), atol=1e-6)
    np.testing.assert_array_equal(cnn.predict_labels(params, images, spec=spec),
                                  batched.argmax(axis=1))
