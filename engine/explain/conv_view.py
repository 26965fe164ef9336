"""The CNN's first convolution, one number at a time: forward cells and kernel-gradient cells.

Forward: feature map cell (row, col) of filter f is the k x k input patch under the kernel
(its receptive field, zero padding included) times the kernel, summed, plus the bias; then ReLU.
Backward: dL/dK[a, b, f] = sum over every output position (i, j) of the input pixel the kernel's
(a, b) entry touched there, x_pad[i + a, j + b], times the upstream gradient dL/dz[i, j, f]:
a sliding window whose products add up, position by position, to jax.grad's value. And
dL/dx[r, c] = sum over filters f and kernel entries (a, b) of K[a, b, f] dL/dz[r + p - a,
c + p - b, f] (p: the padding before): every output position whose window covered the pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from engine import cnn
from engine.cnn.layers import padding_amounts
from engine.data.mnist import as_float
from engine.models.model import Model


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class ForwardCell:
    """Feature map cell (row, col) of filter `filter`: patch (k, k) of the zero-padded input,
    kernel (k, k), bias; z = sum(patch * kernel) + bias, activation = relu(z). top, left: the
    patch's first pixel in the unpadded image (negative inside the padding)."""

    patch: np.ndarray
    kernel: np.ndarray
    bias: float
    top: int
    left: int

    @property
    def z(self) -> float:
        return float((self.patch * self.kernel).sum() + self.bias)

    @property
    def activation(self) -> float:
        return max(self.z, 0.0)


@dataclass(frozen=True, eq=False)
class KernelGradientCell:
    """dL/dK[a, b, f] as a sum over the H x W output positions: pixels (H, W) is the input
    pixel under kernel entry (a, b) at each position, upstream (H, W) is dL/dz there;
    products = pixels * upstream, and `jax_value` jax.grad's dL/dK[a, b, 0, f]."""

    pixels: np.ndarray
    upstream: np.ndarray
    jax_value: float

    @property
    def products(self) -> np.ndarray:
        return self.pixels * self.upstream

    @property
    def value(self) -> float:
        return float(self.products.sum())

    def running_sum(self) -> np.ndarray:
        """(H * W,) the sum after each position, row by row (the sliding window's total)."""
        return np.cumsum(self.products.ravel())


@dataclass(frozen=True, eq=False)
class InputGradientCell:
    """dL/dx[row, col] as a sum: kernels (k, k, F), upstream (k, k, F) the gradient dL/dz at
    the output position where kernel entry (a, b) sat on this pixel (0 off the map);
    `jax_value` jax.grad's dL/dx[row, col], `gradient` (28, 28) jax.grad's whole dL/dx."""

    kernels: np.ndarray
    upstream: np.ndarray
    jax_value: float
    gradient: np.ndarray

    @property
    def products(self) -> np.ndarray:
        return self.kernels * self.upstream

    @property
    def value(self) -> float:
        return float(self.products.sum())


def padded_image(image: np.ndarray, spec: cnn.CNNSpec) -> tuple[np.ndarray, int]:
    """(the image (28, 28) zero-padded as the first convolution pads it, pixels padded before)."""
    before, after = padding_amounts(image.shape[0], spec.kernel_size, 1, spec.padding)
    return np.pad(image, ((before, after), (before, after))), before


def check_cell(model: Model, row: int, col: int, filter_: int) -> None:
    """Raise IndexError with the valid ranges unless (row, col, filter) is a first-block cell."""
    side = cnn.conv_output_size(28, model.architecture.kernel_size, 1, model.architecture.padding)
    filters = model.architecture.filters[0]
    if not (0 <= row < side and 0 <= col < side and 0 <= filter_ < filters):
        raise IndexError(f"there is no cell ({row}, {col}) of filter {filter_}: rows and "
                         f"columns go from 0 to {side - 1}, filters from 0 to {filters - 1}")


def forward_cell(model: Model, image: np.ndarray, row: int, col: int, filter_: int
                 ) -> ForwardCell:
    """The sum behind first-block feature map cell (row, col) of `filter_` for image (28, 28)."""
    check_cell(model, row, col, filter_)
    k = model.architecture.kernel_size
    padded, before = padded_image(as_float(np.asarray(image)), model.architecture)
    kernel = np.asarray(model.params["conv0_w"])[:, :, 0, filter_]
    return ForwardCell(padded[row:row + k, col:col + k], kernel,
                       float(np.asarray(model.params["conv0_b"])[filter_]), row - before,
                       col - before)


def logits_from_first_response(params: cnn.Params, z0: jax.Array, *, spec: cnn.CNNSpec
                               ) -> jax.Array:
    """The CNN's logits (N, 10) given its first convolution's output z0 (N, H, W, F), bias
    included, before ReLU: the rest of `cnn.logits`, so dL/dz0 can be asked of jax.grad."""
    x = jax.nn.relu(z0)
    x = x if spec.pool == "none" else cnn.pool2d(x, spec.pool)
    for i in range(1, spec.blocks):
        _, x = cnn.conv_block(params, i, x, spec=spec)
    return x.reshape(x.shape[0], -1) @ params["dense_w"] + params["dense_b"]


@partial(jax.jit, static_argnames="spec")
def _gradients(params, image, label, *, spec):
    """(dL/dz0 (H, W, F), dL/dK0 (k, k, 1, F), dL/dx (28, 28)) of the cross-entropy of one
    image (28, 28)."""
    z0 = cnn.conv2d(cnn.as_nhwc(image[None]), params["conv0_w"], padding=spec.padding)
    z0 = z0 + params["conv0_b"]

    def loss_of_z0(z):
        return -jax.nn.log_softmax(logits_from_first_response(params, z, spec=spec))[0, label]

    def loss(p, x):
        return -jax.nn.log_softmax(cnn.logits(p, x[None], spec=spec))[0, label]

    grad_params, grad_image = jax.grad(loss, argnums=(0, 1))(params, image)
    return jax.grad(loss_of_z0)(z0)[0], grad_params["conv0_w"], grad_image


def kernel_gradient_cell(model: Model, image: np.ndarray, label: int, a: int, b: int,
                         filter_: int) -> KernelGradientCell:
    """dL/dK[a, b, 0, filter_] of the cross-entropy of image (28, 28) with `label`, as the sum
    over output positions, beside jax.grad's value. Raises IndexError outside the kernel."""
    spec = model.architecture
    k, filters = spec.kernel_size, spec.filters[0]
    if not (0 <= a < k and 0 <= b < k and 0 <= filter_ < filters):
        raise IndexError(f"there is no kernel entry ({a}, {b}) of filter {filter_}: rows and "
                         f"columns go from 0 to {k - 1}, filters from 0 to {filters - 1}")
    pixels = as_float(np.asarray(image))
    upstream, grad_kernel, _ = _gradients(model.params, jnp.asarray(pixels), label, spec=spec)
    padded, _ = padded_image(pixels, spec)
    side = upstream.shape[0]
    return KernelGradientCell(padded[a:a + side, b:b + side],
                              np.asarray(upstream)[:, :, filter_],
                              float(grad_kernel[a, b, 0, filter_]))


def input_gradient_cell(model: Model, image: np.ndarray, label: int, row: int, col: int
                        ) -> InputGradientCell:
    """dL/dx[row, col] of the cross-entropy of image (28, 28) with `label`, through the first
    convolution: the sum over filters and kernel entries, beside jax.grad's value. Raises
    IndexError for a pixel outside the image."""
    if not (0 <= row < 28 and 0 <= col < 28):
        raise IndexError(f"there is no pixel ({row}, {col}): rows and columns go from 0 to 27")
    spec = model.architecture
    k = spec.kernel_size
    before, _ = padding_amounts(28, k, 1, spec.padding)
    pixels = as_float(np.asarray(image))
    upstream, _, grad_image = _gradients(model.params, jnp.asarray(pixels), label, spec=spec)
    # Entry (a, b) sat on this pixel at output position (row + before - a, col + before - b);
    # padding the map by k - 1 zeros makes positions off the map read 0.
    margin = np.pad(np.asarray(upstream), ((k - 1, k - 1), (k - 1, k - 1), (0, 0)))
    rows = row + before + k - 1 - np.arange(k)
    cols = col + before + k - 1 - np.arange(k)
    return InputGradientCell(np.asarray(model.params["conv0_w"])[:, :, 0, :],
                             margin[rows][:, cols], float(grad_image[row, col]),
                             np.asarray(grad_image))
