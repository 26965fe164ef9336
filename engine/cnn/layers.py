"""The CNN's layers in JAX: convolution as im2col by shifted slices and one matmul, reshape pooling,
dropout, and shift augmentation. Arrays are NHWC: (batch, height, width, channels), except inside
the convolution and the model's forward pass, which compute in CHWN (channels first, batch last)
because the matmuls of a training step are fastest there."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

POOL_SIZE = 2


class ArchitectureError(ValueError):
    """A CNN that cannot be built; the message says what is impossible."""


# ----------------------------------------------------------------------------- convolution

def padding_amounts(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) zero padding on one spatial axis.

    "same" follows XLA/TensorFlow: the output has ceil(size / stride) positions and any odd
    padding goes after, so our convolution lines up exactly with `lax.conv_general_dilated`.
    """
    if padding == "valid":
        return 0, 0
    if padding != "same":
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: str = "same") -> int:
    """Positions along one axis after a convolution (0 when the kernel does not fit)."""
    before, after = padding_amounts(size, kernel, stride, padding)
    return max((size + before + after - kernel) // stride + 1, 0)


def swap_batch_and_channels(x: jax.Array) -> jax.Array:
    """(N, H, W, C) <-> (C, H, W, N): between the public layout and the one computed in."""
    return jnp.transpose(x, (3, 1, 2, 0))


def im2col(x: jax.Array, kh: int, kw: int, *, stride: int = 1, padding: str = "same") -> jax.Array:
    """Patches of `x` stacked on the channel axis, one strided slice per kernel offset.

    x: (C, H, W, N) -> (kh*kw*C, OH, OW, N), ordered (row offset, column offset, channel) so that
    a (kh, kw, C, F) kernel reshaped to (kh*kw*C, F) and transposed multiplies it directly.
    Channels first and the batch last: each slice keeps whole rows of the batch together, the
    stacking copies whole blocks, and the backward is a sum of padded blocks (no gather).
    """
    _, h, w, _ = x.shape
    pad_h = padding_amounts(h, kh, stride, padding)
    pad_w = padding_amounts(w, kw, stride, padding)
    oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    if oh == 0 or ow == 0:
        raise ArchitectureError(f"a {kh}x{kw} kernel does not fit a {h}x{w} input")
    padded = jnp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    shifted = [
        padded[:, i : i + (oh - 1) * stride + 1 : stride, j : j + (ow - 1) * stride + 1 : stride, :]
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.concatenate(shifted, axis=0)


def conv2d_chwn(x: jax.Array, kernel: jax.Array, *, stride: int = 1, padding: str = "same"
                ) -> jax.Array:
    """Cross-correlation (what deep learning calls convolution), no bias, channels first.

    x: (Cin, H, W, N), kernel: (kh, kw, Cin, Cout) -> (Cout, OH, OW, N). One matmul
    (Cout, kh*kw*Cin) @ (kh*kw*Cin, OH*OW*N): its backward is two plain matmuls as well, where
    the (N*OH*OW, k) @ (k, Cout) of channels-last needs a transposed copy and a slow matmul
    for the kernel's gradient. With the block-wise im2col and pooling over a batch-innermost
    map, a training step of the benchmark CNN is much faster than channels-last on CPU (R3).
    """
    kh, kw, cin, cout = kernel.shape
    patches = im2col(x, kh, kw, stride=stride, padding=padding)
    out = kernel.reshape(kh * kw * cin, cout).T @ patches.reshape(kh * kw * cin, -1)
    return out.reshape(cout, *patches.shape[1:])


def conv2d(x: jax.Array, kernel: jax.Array, *, stride: int = 1, padding: str = "same") -> jax.Array:
    """`conv2d_chwn` in the public layout.

    x: (N, H, W, Cin), kernel: (kh, kw, Cin, Cout) -> (N, OH, OW, Cout).
    """
    return swap_batch_and_channels(
        conv2d_chwn(swap_batch_and_channels(x), kernel, stride=stride, padding=padding))


def lax_conv2d(x: jax.Array, kernel: jax.Array, *, stride: int = 1, padding: str = "same",
               layout: str = "NHWC") -> jax.Array:
    """The library's convolution with `conv2d`'s signature: the reference for tests and benchmarks.

    x: (N, H, W, Cin), kernel: (kh, kw, Cin, Cout) -> (N, OH, OW, Cout); layout="CHWN" takes and
    gives `conv2d_chwn`'s layout instead.
    """
    return lax.conv_general_dilated(
        x, kernel, window_strides=(stride, stride), padding=padding.upper(),
        dimension_numbers=(layout, "HWIO", layout),
    )


def conv_relu_pool_direct(x: jax.Array, kernel: jax.Array, bias: jax.Array, *, pool: str = "max",
                          padding: str = "same") -> jax.Array:
    """pool(relu(conv(x, kernel) + bias)) as shifted multiply-adds, one pooling phase at a time.

    x: (Cin, H, W, N), kernel: (k, k, Cin, Cout), bias: (Cout,) -> (Cout, PH, PW, N): the value
    of `pool2d(relu(conv2d_chwn(x, kernel) + bias), pool)` (pool "none": unpooled), stride 1.
    Phase (di, dj) of the 2x2 window is the convolution at rows 2a + di, columns 2b + dj: a sum
    of k*k*Cin scaled strided slices, which XLA fuses with the ReLU and the pooling into one
    loop, so neither the patches nor the full map are written. For the forward pass alone of a
    block with few input channels (the first: Cin = 1, where im2col's matmul has K = 9 and is
    bound by memory) it is faster than im2col + matmul + pooling; in a training step, whose
    backward goes through every slice, it is slower, so training keeps `conv2d_chwn` (the
    README's notes on figures L3 and R4).
    """
    kh, kw, cin, _ = kernel.shape
    _, h, w, _ = x.shape
    step = 1 if pool == "none" else POOL_SIZE
    ph = conv_output_size(h, kh, 1, padding) // step
    pw = conv_output_size(w, kw, 1, padding) // step
    if ph == 0 or pw == 0:
        raise ArchitectureError(f"a {h}x{w} input is too small for a {kh}x{kw} kernel and "
                                f"{step}x{step} pooling")
    padded = jnp.pad(x, ((0, 0), padding_amounts(h, kh, 1, padding),
                         padding_amounts(w, kw, 1, padding), (0, 0)))

    def phase(di: int, dj: int) -> jax.Array:
        z = sum(kernel[i, j, c][:, None, None, None]
                * padded[c, di + i: di + i + (ph - 1) * step + 1: step,
                         dj + j: dj + j + (pw - 1) * step + 1: step]
                for i in range(kh) for j in range(kw) for c in range(cin))
        return jax.nn.relu(z + bias[:, None, None, None])

    phases = [phase(di, dj) for di in range(step) for dj in range(step)]
    if pool == "avg":
        return sum(phases) / len(phases)
    if pool in ("max", "none"):
        return functools.reduce(jnp.maximum, phases)
    raise ValueError(f"pool kind must be 'max', 'avg' or 'none', got {pool!r}")


# ----------------------------------------------------------------------------- pooling

def pool2d(x: jax.Array, kind: str = "max", size: int = POOL_SIZE) -> jax.Array:
    """Non-overlapping size x size pooling by reshape, over axes 1 and 2.

    x: (N, H, W, C) -> (N, H // size, W // size, C), or the same with C and N swapped (CHWN).
    A reshape needs H and W divisible by `size`, so trailing rows/columns that do not fill a
    window are cropped (PyTorch's floor mode, XLA's "VALID" window): a 7x7 map max-pools to 3x3
    and its last row and column are never seen. Max pooling's gradient goes to each window's
    first maximum (see `window_max`).
    """
    n, h, w, c = x.shape  # (c, h, w, n) in CHWN: only axes 1 and 2 are pooled
    oh, ow = h // size, w // size
    if oh == 0 or ow == 0:
        raise ArchitectureError(f"a {h}x{w} map is too small for {size}x{size} pooling")
    windows = x[:, : oh * size, : ow * size, :].reshape(n, oh, size, ow, size, c)
    if kind == "max":
        return window_max(windows)
    if kind == "avg":
        return windows.mean(axis=(2, 4))
    raise ValueError(f"pool kind must be 'max' or 'avg', got {kind!r}")


@jax.custom_vjp
def window_max(windows: jax.Array) -> jax.Array:
    """Each window's largest value: (N, OH, size, OW, size, C) -> (N, OH, OW, C), or the same
    with C and N swapped (CHWN).

    Its gradient goes to the window's first maximum in row-major order, as the gradient of
    `lax.reduce_window`'s max and PyTorch's max pooling send it. JAX's own `max` splits it
    evenly among tied values (ties are common: a thick stroke gives equal ReLU outputs side by
    side), which costs a reduction, a division and a broadcast per pooling layer (the README's
    notes on figure R4).
    """
    return windows.max(axis=(2, 4))


def window_max_forward(windows: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """`window_max`, keeping the windows and their maxima for the backward pass."""
    top = windows.max(axis=(2, 4))
    return top, (windows, top)


def window_max_backward(residuals: tuple[jax.Array, jax.Array], grad: jax.Array
                        ) -> tuple[jax.Array]:
    """The pooled gradient (N, OH, OW, C) placed at each window's first maximum."""
    windows, top = residuals
    size = windows.shape[2]
    first = jnp.full(top.shape, size * size - 1, jnp.int32)  # where no earlier offset is the max
    for offset in reversed(range(size * size - 1)):
        row, col = divmod(offset, size)
        first = jnp.where(windows[:, :, row, :, col, :] == top, offset, first)
    offsets = (size * lax.broadcasted_iota(jnp.int32, windows.shape, 2)
               + lax.broadcasted_iota(jnp.int32, windows.shape, 4))
    spread = (slice(None), slice(None), None, slice(None), None, slice(None))
    return (jnp.where(offsets == first[spread], grad[spread], 0.0),)


window_max.defvjp(window_max_forward, window_max_backward)


# ----------------------------------------------------------------------------- regularisation

def dropout(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
    """Inverted dropout: zero a `rate` fraction of x, scale the rest so the expectation is kept."""
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)
