"""A small CNN in JAX whose convolution is written here: im2col by shifted slices and one matmul."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Params = dict[str, list[dict[str, jax.Array]] | dict[str, jax.Array]]
ConvFn = Callable[..., jax.Array]

IMAGE_SIZE = 28
N_CLASSES = 10
POOL_SIZE = 2
POOL_KINDS = ("max", "avg", "none")
PADDINGS = ("same", "valid")


class ArchitectureError(ValueError):
    """A CNN spec that cannot be built; the message says what is impossible."""


# ----------------------------------------------------------------------------- the convolution

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


def im2col(x: jax.Array, kh: int, kw: int, *, stride: int = 1, padding: str = "same") -> jax.Array:
    """Patches of `x` stacked on the channel axis, one strided slice per kernel offset.

    x: (N, H, W, C) -> (N, OH, OW, kh*kw*C), ordered (row offset, column offset, channel) so that
    a (kh, kw, C, F) kernel reshaped to (kh*kw*C, F) multiplies it directly. Slices and one concat
    are cheap for XLA on CPU, and the matmul that follows is the fast path of the machine.
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
    return jnp.concatenate(shifted, axis=-1)


def conv2d(x: jax.Array, kernel: jax.Array, *, stride: int = 1, padding: str = "same") -> jax.Array:
    """Cross-correlation (what deep learning calls convolution), no bias.

    x: (N, H, W, Cin), kernel: (kh, kw, Cin, Cout) -> (N, OH, OW, Cout).
    """
    kh, kw, cin, cout = kernel.shape
    return im2col(x, kh, kw, stride=stride, padding=padding) @ kernel.reshape(kh * kw * cin, cout)


def lax_conv2d(
    x: jax.Array, kernel: jax.Array, *, stride: int = 1, padding: str = "same"
) -> jax.Array:
    """The library's convolution with `conv2d`'s signature: the reference for tests and benchmarks.

    x: (N, H, W, Cin), kernel: (kh, kw, Cin, Cout) -> (N, OH, OW, Cout).
    """
    return lax.conv_general_dilated(
        x, kernel, window_strides=(stride, stride), padding=padding.upper(),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


# ----------------------------------------------------------------------------- pooling

def pool2d(x: jax.Array, kind: str = "max", size: int = POOL_SIZE) -> jax.Array:
    """Non-overlapping size x size pooling by reshape.

    x: (N, H, W, C) -> (N, H // size, W // size, C). A reshape needs H and W divisible by `size`,
    so trailing rows/columns that do not fill a window are cropped (PyTorch's floor mode, XLA's
    "VALID" window): a 7x7 map max-pools to 3x3 and its last row and column are never seen.
    """
    n, h, w, c = x.shape
    oh, ow = h // size, w // size
    if oh == 0 or ow == 0:
        raise ArchitectureError(f"a {h}x{w} map is too small for {size}x{size} pooling")
    windows = x[:, : oh * size, : ow * size, :].reshape(n, oh, size, ow, size, c)
    if kind == "max":
        return windows.max(axis=(2, 4))
    if kind == "avg":
        return windows.mean(axis=(2, 4))
    raise ValueError(f"pool kind must be 'max' or 'avg', got {kind!r}")


# ----------------------------------------------------------------------------- architecture

@dataclass(frozen=True)
class CNNSpec:
    """Conv blocks (conv -> ReLU -> optional 2x2 pool), then dropout (optional) and a dense head.

    Hashable, so it can be a static argument of `jax.jit`. Constructing an impossible spec raises
    `ArchitectureError`.
    """

    filters: tuple[int, ...] = (8, 16)
    kernel_size: int = 3
    pool: Literal["max", "avg", "none"] = "max"
    padding: Literal["same", "valid"] = "same"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        validate_spec(self)

    @property
    def blocks(self) -> int:
        return len(self.filters)

    def map_sizes(self) -> list[int]:
        """Side of the square map after each block, from the 28x28 input (assumes a valid spec)."""
        sizes, side = [], IMAGE_SIZE
        for _ in self.filters:
            side = conv_output_size(side, self.kernel_size, 1, self.padding)
            if self.pool != "none":
                side //= POOL_SIZE
            sizes.append(side)
        return sizes

    def describe(self) -> str:
        """One line such as 'conv 3x3x8 - ReLU - maxpool 2 - ... - dense 10'."""
        k, parts = self.kernel_size, []
        for f in self.filters:
            parts += [f"conv {k}x{k}x{f}", "ReLU"]
            if self.pool != "none":
                parts.append(f"{self.pool}pool {POOL_SIZE}")
        if self.dropout:
            parts.append(f"dropout {self.dropout:g}")
        return " - ".join([*parts, f"dense {N_CLASSES}"])


def validate_spec(spec: CNNSpec) -> None:
    """Raise `ArchitectureError` saying what is impossible about `spec`, else return None."""
    if not spec.filters:
        raise ArchitectureError("a CNN needs at least one conv block")
    if any(f < 1 for f in spec.filters):
        raise ArchitectureError(f"every block needs at least one filter, got {list(spec.filters)}")
    if spec.kernel_size < 1:
        raise ArchitectureError(f"kernel size must be at least 1, got {spec.kernel_size}")
    if spec.pool not in POOL_KINDS:
        raise ArchitectureError(f"pool must be one of {POOL_KINDS}, got {spec.pool!r}")
    if spec.padding not in PADDINGS:
        raise ArchitectureError(f"padding must be one of {PADDINGS}, got {spec.padding!r}")
    if not 0.0 <= spec.dropout < 1.0:
        raise ArchitectureError(f"dropout rate must be in [0, 1), got {spec.dropout}")
    side = IMAGE_SIZE
    for block, _ in enumerate(spec.filters, start=1):
        if spec.kernel_size > side:
            raise ArchitectureError(
                f"block {block}: a {spec.kernel_size}x{spec.kernel_size} kernel is larger than "
                f"its {side}x{side} input; use fewer blocks, a smaller kernel, or no pooling"
            )
        after_conv = conv_output_size(side, spec.kernel_size, 1, spec.padding)
        if spec.pool != "none" and after_conv < POOL_SIZE:
            raise ArchitectureError(
                f"{block - 1} blocks shrink {IMAGE_SIZE}x{IMAGE_SIZE} to {side}x{side}, and block "
                f"{block}'s conv leaves {after_conv}x{after_conv}: too small for "
                f"{POOL_SIZE}x{POOL_SIZE} pooling; use fewer blocks or no pooling"
            )
        side = after_conv if spec.pool == "none" else after_conv // POOL_SIZE


# ----------------------------------------------------------------------------- parameters and model

def init_params(key: jax.Array, spec: CNNSpec) -> Params:
    """He-normal kernels and zero biases, from one draw of `key`.

    Returns {"conv": [{"w": (k, k, Cin, F), "b": (F,)} per block],
             "dense": {"w": (D, 10), "b": (10,)}}, D = side * side * filters[-1] of the last map.
    One normal vector is drawn and cut into the kernels because every separate JAX random call
    compiles on first use (about 0.5 s each).
    """
    side = spec.map_sizes()[-1]
    shapes = [(spec.kernel_size, spec.kernel_size, cin, cout)
              for cin, cout in zip((1, *spec.filters[:-1]), spec.filters, strict=True)]
    shapes.append((side * side * spec.filters[-1], N_CLASSES))
    sizes = [math.prod(shape) for shape in shapes]
    noise = np.asarray(jax.random.normal(key, (sum(sizes),), jnp.float32))
    pieces = np.split(noise, np.cumsum(sizes)[:-1])
    # He scaling (variance 2 / fan_in) keeps ReLU activations' scale from block to block; the head
    # feeds a softmax, so it gets 1 / fan_in.
    weights = [piece.reshape(shape) * np.float32(np.sqrt(gain / math.prod(shape[:-1])))
               for piece, shape, gain in zip(pieces, shapes, [2.0] * spec.blocks + [1.0],
                                             strict=True)]
    conv = [{"w": jnp.asarray(w), "b": jnp.zeros(w.shape[-1], jnp.float32)} for w in weights[:-1]]
    return {"conv": conv, "dense": {"w": jnp.asarray(weights[-1]),
                                    "b": jnp.zeros(N_CLASSES, jnp.float32)}}


def as_float(images: jax.Array) -> jax.Array:
    """Pixels as a float array: float32 unless already floating (float64 keeps test precision)."""
    images = jnp.asarray(images)
    return images if jnp.issubdtype(images.dtype, jnp.floating) else images.astype(jnp.float32)


def as_nhwc(images: jax.Array) -> jax.Array:
    """(N, 28, 28) or (N, 28, 28, 1) pixels -> (N, 28, 28, 1) float."""
    images = as_float(images)
    return images[..., None] if images.ndim == 3 else images


def conv_block(
    layer: dict[str, jax.Array], x: jax.Array, *, spec: CNNSpec, conv: ConvFn = conv2d
) -> tuple[jax.Array, jax.Array]:
    """One block: (activation after conv + ReLU, output after pooling), x: (N, H, W, Cin)."""
    activation = jax.nn.relu(conv(x, layer["w"], padding=spec.padding) + layer["b"])
    pooled = activation if spec.pool == "none" else pool2d(activation, spec.pool)
    return activation, pooled


def dropout(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
    """Inverted dropout: zero a `rate` fraction of x, scale the rest so the expectation is kept."""
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def logits(
    params: Params,
    images: jax.Array,
    *,
    spec: CNNSpec,
    train: bool = False,
    key: jax.Array | None = None,
    conv: ConvFn = conv2d,
) -> jax.Array:
    """Class scores. images: (N, 28, 28) in [0, 1] -> (N, 10).

    `train=True` with dropout in the spec needs `key`; `conv` swaps the convolution (benchmarks).
    """
    x = as_nhwc(images)
    for layer in params["conv"]:
        _, x = conv_block(layer, x, spec=spec, conv=conv)
    x = x.reshape(x.shape[0], -1)
    if train and spec.dropout:
        if key is None:
            raise ValueError("training with dropout needs an RNG key: logits(..., key=...)")
        x = dropout(key, x, spec.dropout)
    return x @ params["dense"]["w"] + params["dense"]["b"]


@partial(jax.jit, static_argnames="spec")
def predict_proba(params: Params, images: jax.Array, *, spec: CNNSpec) -> jax.Array:
    """Class probabilities. images: (N, 28, 28) -> (N, 10), rows sum to 1."""
    return jax.nn.softmax(logits(params, images, spec=spec), axis=-1)


@partial(jax.jit, static_argnames="spec")
def feature_maps(params: Params, image: jax.Array, *, spec: CNNSpec) -> list[jax.Array]:
    """What each conv layer sees in one image: after conv + ReLU, before pooling.

    image: (28, 28) -> [(H, W, filters) per block].
    """
    x, maps = as_nhwc(jnp.asarray(image)[None]), []
    for layer in params["conv"]:
        activation, x = conv_block(layer, x, spec=spec)
        maps.append(activation[0])
    return maps


@partial(jax.jit, static_argnames="spec")
def saliency(params: Params, image: jax.Array, cls: int, *, spec: CNNSpec) -> jax.Array:
    """Gradient of class `cls`'s score with respect to each input pixel.

    image: (28, 28) -> (28, 28). Large magnitude: pixels whose change would move the score most.
    """

    def class_score(pixels: jax.Array) -> jax.Array:
        return logits(params, pixels[None], spec=spec)[0, cls]

    return jax.grad(class_score)(as_float(image))


# ----------------------------------------------------------------------------- augmentation

def random_shift(key: jax.Array, images: jax.Array, max_shift: int = 2) -> jax.Array:
    """Move each image by its own random whole-pixel offset in [-max_shift, max_shift] per axis.

    images: (N, H, W) -> (N, H, W); pixels moved in from outside are 0 (background). Drawn digits
    are rarely centred the way MNIST is, so this buys robustness on the sketch page.
    """
    if max_shift == 0:
        return images
    n, h, w = images.shape
    offsets = jax.random.randint(key, (n, 2), 0, 2 * max_shift + 1)
    padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))

    def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
        return lax.dynamic_slice(image, (offset[0], offset[1]), (h, w))

    return jax.vmap(crop)(padded, offsets)
