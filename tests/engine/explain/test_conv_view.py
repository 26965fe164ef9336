"""The convolution made visible: a cell's dot product is the feature map (ours and
lax.conv_general_dilated's), a kernel-gradient cell's sum is jax.grad's dL/dK, an input-gradient
cell's sum is jax.grad's dL/dx."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import cnn
from engine.data.mnist import as_float, embedded_split
from engine.explain.conv_view import (
    forward_cell,
    input_gradient_cell,
    kernel_gradient_cell,
    logits_from_first_response,
)


@pytest.fixture(scope="module")
def digits():
    split = embedded_split()
    return split.x_test[::111][:8], split.y_test[::111][:8]


@settings(max_examples=25, deadline=None)
@given(which=st.integers(0, 7), row=st.integers(0, 27), col=st.integers(0, 27),
       filter_=st.integers(0, 15))
def test_a_cells_dot_product_is_the_feature_map(defaults, digits, which, row, col, filter_):
    model, image = defaults["cnn"], digits[0][which]
    cell = forward_cell(model, image, row, col, filter_)
    ours = np.asarray(cnn.feature_maps(model.params, as_float(image), spec=model.architecture)[0])
    library = np.asarray(cnn.lax_conv2d(as_float(image)[None, :, :, None],
                                        model.params["conv0_w"]))[0] + model.params["conv0_b"]
    assert cell.activation == pytest.approx(float(ours[row, col, filter_]), abs=1e-5)
    assert cell.z == pytest.approx(float(library[row, col, filter_]), abs=1e-5)
    assert cell.patch.shape == cell.kernel.shape == (3, 3)
    assert (cell.top, cell.left) == (row - 1, col - 1)


@settings(max_examples=20, deadline=None)
@given(which=st.integers(0, 7), a=st.integers(0, 2), b=st.integers(0, 2),
       filter_=st.integers(0, 15), label=st.integers(0, 9))
def test_a_kernel_gradient_cell_sums_to_jax_grad(defaults, digits, which, a, b, filter_, label):
    cell = kernel_gradient_cell(defaults["cnn"], digits[0][which], label, a, b, filter_)
    scale = max(abs(cell.jax_value), np.abs(cell.products).sum(), 1e-12)
    assert abs(cell.value - cell.jax_value) <= 1e-5 * scale
    np.testing.assert_allclose(cell.running_sum(), sum_row_by_row(cell.pixels, cell.upstream),
                               rtol=0, atol=1e-6 * scale)
    assert cell.pixels.shape == cell.upstream.shape == (28, 28)


def sum_row_by_row(pixels: np.ndarray, upstream: np.ndarray) -> list[float]:
    """Reference: the sliding window's total (H * W,) after each output position of pixels and
    upstream (H, W), added up in a loop, left to right and top to bottom."""
    total, totals = 0.0, []
    for i in range(pixels.shape[0]):
        for j in range(pixels.shape[1]):
            total += float(pixels[i, j]) * float(upstream[i, j])
            totals.append(total)
    return totals


@settings(max_examples=20, deadline=None)
@given(which=st.integers(0, 7), row=st.sampled_from([0, 1, 13, 26, 27]),
       col=st.integers(0, 27), label=st.integers(0, 9))
def test_an_input_gradient_cell_sums_to_jax_grad(defaults, digits, which, row, col, label):
    cell = input_gradient_cell(defaults["cnn"], digits[0][which], label, row, col)
    scale = max(abs(cell.jax_value), np.abs(cell.products).sum(), 1e-12)
    assert abs(cell.value - cell.jax_value) <= 1e-5 * scale
    assert cell.kernels.shape == cell.upstream.shape == (3, 3, 16)
    if row == 0:  # kernel row 2 covers image row 0 only from output row -1: off the map
        assert (cell.upstream[2] == 0).all()


def test_the_rest_of_the_net_after_the_first_convolution_is_the_cnn(defaults, digits):
    model, images = defaults["cnn"], as_float(digits[0])
    z0 = cnn.conv2d(cnn.as_nhwc(images), model.params["conv0_w"]) + model.params["conv0_b"]
    np.testing.assert_allclose(logits_from_first_response(model.params, z0,
                                                          spec=model.architecture),
                               cnn.logits(model.params, images, spec=model.architecture),
                               rtol=1e-5, atol=1e-5)


def test_cells_outside_are_refused(defaults, digits):
    image = digits[0][0]
    with pytest.raises(IndexError, match="from 0 to 27, filters from 0 to 15"):
        forward_cell(defaults["cnn"], image, 28, 0, 0)
    with pytest.raises(IndexError, match="filters from 0 to 15"):
        forward_cell(defaults["cnn"], image, 0, 0, 16)
    with pytest.raises(IndexError, match="from 0 to 2"):
        kernel_gradient_cell(defaults["cnn"], image, 3, 3, 0, 0)
    with pytest.raises(IndexError, match="no pixel"):
        input_gradient_cell(defaults["cnn"], image, 3, 0, -1)
