"""The CNN model: a validated architecture spec, parameters, and pure functions over them (class
scores, probabilities, feature maps, saliency)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from engine.cnn.layers import (
    POOL_SIZE,
    ArchitectureError,
    conv2d_chwn,
    conv_output_size,
    dropout,
    pool2d,
    swap_batch_and_channels,
)
from engine.data.mnist import N_CLASSES, as_float
from engine.models import checkpoint
from engine.models.model import widths_from_text

Params = dict[str, jax.Array]  # "conv0_w" (k, k, Cin, F), "conv0_b" (F,), ..., "dense_w", "dense_b"
ConvFn = Callable[..., jax.Array]

MODEL_KIND = "cnn"  # the name its model files store
IMAGE_SIZE = 28
POOL_KINDS = ("max", "avg", "none")
PADDINGS = ("same", "valid")


@dataclass(frozen=True)
class CNNSpec:
    """Conv blocks (conv -> ReLU -> optional 2x2 pool), then optional dropout and a dense head.

    filters: one entry per block, its number of filters. Hashable, so it can be a static argument
    of `jax.jit`. Constructing an impossible spec raises `ArchitectureError`.
    """

    filters: tuple[int, ...] = (16, 32)
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
        """Side of the square map after each block (conv and pool), from the 28x28 input."""
        sizes, side = [], IMAGE_SIZE
        for _ in self.filters:
            side = conv_output_size(side, self.kernel_size, 1, self.padding)
            if self.pool != "none":
                side //= POOL_SIZE
            sizes.append(side)
        return sizes

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in layer order."""
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (cin, cout) in enumerate(zip((1, *self.filters[:-1]), self.filters, strict=True)):
            shapes[f"conv{i}_w"] = (self.kernel_size, self.kernel_size, cin, cout)
            shapes[f"conv{i}_b"] = (cout,)
        side = self.map_sizes()[-1]
        shapes["dense_w"] = (side * side * self.filters[-1], N_CLASSES)
        shapes["dense_b"] = (N_CLASSES,)
        return shapes

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

    def to_metadata(self) -> dict[str, Any]:
        return {"filters": list(self.filters), "kernel_size": self.kernel_size, "pool": self.pool,
                "padding": self.padding, "dropout": self.dropout}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> CNNSpec:
        """Inverse of `to_metadata`; raises ArchitectureError for anything malformed."""
        try:
            fields = (tuple(int(f) for f in meta["filters"]), int(meta["kernel_size"]),
                      str(meta["pool"]), str(meta["padding"]), float(meta["dropout"]))
        except (KeyError, TypeError, ValueError):
            raise ArchitectureError(f"not a CNN architecture: {meta!r}") from None
        return cls(*fields)


def parse_filters(text: str) -> tuple[int, ...]:
    """"16, 32" -> (16, 32): filters per conv block. Raises ArchitectureError if unreadable."""
    try:
        return widths_from_text(text, "filters per block", "16, 32")
    except ValueError as error:
        raise ArchitectureError(str(error)) from None


def format_filters(filters: tuple[int, ...]) -> str:
    """(16, 32) -> "16, 32": the text `parse_filters` reads back (a control's default)."""
    return ", ".join(map(str, filters))


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


def init_params(key: jax.Array, spec: CNNSpec) -> Params:
    """He-normal weights and zero biases, float32, shapes as `spec.param_shapes()`.

    One normal vector is drawn from `key` and cut into the weights, because every separate JAX
    random call compiles on first use, which a user waits for.
    """
    weights = {name: shape for name, shape in spec.param_shapes().items() if name.endswith("_w")}
    sizes = [math.prod(shape) for shape in weights.values()]
    noise = np.asarray(jax.random.normal(key, (sum(sizes),), jnp.float32))
    params: Params = {}
    for (name, shape), piece in zip(weights.items(), np.split(noise, np.cumsum(sizes)[:-1]),
                                    strict=True):
        fan_in = math.prod(shape[:-1])
        # Variance 2 / fan_in keeps ReLU activations' scale from block to block (He); the head
        # feeds a softmax, not a ReLU, so it gets 1 / fan_in.
        gain = 1.0 if name == "dense_w" else 2.0
        params[name] = jnp.asarray(piece.reshape(shape) * np.float32(math.sqrt(gain / fan_in)))
        params[name.replace("_w", "_b")] = jnp.zeros(shape[-1], jnp.float32)
    return params


def as_nhwc(images: jax.Array) -> jax.Array:
    """(N, 28, 28) or (N, 28, 28, 1) pixels (uint8, or floats in [0, 1]) -> (N, 28, 28, 1)
    float in [0, 1]."""
    images = as_float(jnp.asarray(images))
    return images[..., None] if images.ndim == 3 else images


def chwn_block(params: Params, i: int, x: jax.Array, *, spec: CNNSpec,
               conv: ConvFn = conv2d_chwn) -> tuple[jax.Array, jax.Array]:
    """Block i on x (Cin, H, W, N), channels first: (activation after conv + ReLU, output after
    pooling), both channels first."""
    bias = params[f"conv{i}_b"][:, None, None, None]
    activation = jax.nn.relu(conv(x, params[f"conv{i}_w"], padding=spec.padding) + bias)
    return activation, activation if spec.pool == "none" else pool2d(activation, spec.pool)


def conv_block(params: Params, i: int, x: jax.Array, *, spec: CNNSpec
               ) -> tuple[jax.Array, jax.Array]:
    """Block i on x (N, H, W, Cin): (activation after conv + ReLU, output after pooling)."""
    activation, pooled = chwn_block(params, i, swap_batch_and_channels(x), spec=spec)
    return swap_batch_and_channels(activation), swap_batch_and_channels(pooled)


def forward(params: Params, images: jax.Array, *, spec: CNNSpec, train: bool = False,
            key: jax.Array | None = None, conv: ConvFn = conv2d_chwn
            ) -> tuple[jax.Array, list[jax.Array]]:
    """(class scores (N, 10), each block's activation after conv + ReLU and before pooling,
    channels first (filters, H, W, N)) of images (N, 28, 28), uint8 pixels or floats in [0, 1].

    The blocks compute channels first (see `conv2d_chwn`). `train=True` with dropout in the spec
    needs `key`; `conv` swaps the convolution (benchmarks; it takes and gives CHWN).
    """
    return forward_chwn(params, swap_batch_and_channels(as_nhwc(images)), spec=spec,
                        train=train, key=key, conv=conv)


def forward_chwn(params: Params, x: jax.Array, *, spec: CNNSpec, start: int = 0,
                 train: bool = False, key: jax.Array | None = None, conv: ConvFn = conv2d_chwn
                 ) -> tuple[jax.Array, list[jax.Array]]:
    """`forward` from block `start` on: x (C, H, W, N) is that block's input, channels first
    (for start = 0, the images (1, 28, 28, N) as floats); activations of blocks start.. only."""
    activations = []
    for i in range(start, spec.blocks):
        activation, x = chwn_block(params, i, x, spec=spec, conv=conv)
        activations.append(activation)
    x = swap_batch_and_channels(x)
    x = x.reshape(x.shape[0], -1)
    if train and spec.dropout:
        if key is None:
            raise ValueError("training with dropout needs an RNG key: logits(..., key=...)")
        x = dropout(key, x, spec.dropout)
    return x @ params["dense_w"] + params["dense_b"], activations


def logits(params: Params, images: jax.Array, *, spec: CNNSpec, train: bool = False,
           key: jax.Array | None = None, conv: ConvFn = conv2d_chwn) -> jax.Array:
    """Class scores. images: (N, 28, 28) uint8 pixels or floats in [0, 1] -> (N, 10); the
    arguments as `forward`'s (under jit the unused activations cost nothing)."""
    return forward(params, images, spec=spec, train=train, key=key, conv=conv)[0]


@partial(jax.jit, static_argnames="spec")
def predict_proba(params: Params, images: jax.Array, *, spec: CNNSpec) -> jax.Array:
    """Class probabilities. images: (N, 28, 28) -> (N, 10), rows sum to 1."""
    return jax.nn.softmax(logits(params, images, spec=spec), axis=-1)


EVAL_BATCH = 250


def batched_proba(params: Params, images: np.ndarray, *, spec: CNNSpec) -> np.ndarray:
    """Class probabilities (N, 10) for images (N, 28, 28), at most EVAL_BATCH at a time.

    Past EVAL_BATCH the images go in batches of that size, the last one padded, so any N costs
    one compile and memory stays at one batch's im2col (the 1,000 test digits at once raised
    the server's peak, benchmark M1). Fewer go in one call of their own shape (a drawing).
    """
    images = as_float(np.asarray(images))
    if len(images) <= EVAL_BATCH:
        return np.asarray(predict_proba(params, images, spec=spec))
    batches = []
    for start in range(0, len(images), EVAL_BATCH):
        batch = images[start:start + EVAL_BATCH]
        padded = np.pad(batch, ((0, EVAL_BATCH - len(batch)), (0, 0), (0, 0)))
        batches.append(np.asarray(predict_proba(params, padded, spec=spec))[: len(batch)])
    return np.concatenate(batches)


def predict_labels(params: Params, images: np.ndarray, *, spec: CNNSpec) -> np.ndarray:
    """Most probable digit (N,) for images (N, 28, 28), in batches (see `batched_proba`)."""
    if not len(images):
        return np.zeros(0, np.int64)
    return batched_proba(params, images, spec=spec).argmax(axis=1)


@partial(jax.jit, static_argnames="spec")
def feature_maps(params: Params, image: jax.Array, *, spec: CNNSpec) -> list[jax.Array]:
    """What each conv layer sees in one image: after conv + ReLU, before pooling.

    image: (28, 28) -> [(H, W, filters) per block].
    """
    _, activations = forward(params, jnp.asarray(image)[None], spec=spec)
    return [jnp.transpose(activation[..., 0], (1, 2, 0)) for activation in activations]


@partial(jax.jit, static_argnames="spec")
def saliency(params: Params, image: jax.Array, cls: int, *, spec: CNNSpec) -> jax.Array:
    """Gradient of class `cls`'s score with respect to each input pixel.

    image: (28, 28) -> (28, 28). Large magnitude: pixels whose change would move the score most.
    """

    def class_score(pixels: jax.Array) -> jax.Array:
        return logits(params, pixels[None], spec=spec)[0, cls]

    return jax.grad(class_score)(as_float(jnp.asarray(image)))


def first_layer_filters(params: Params) -> np.ndarray:
    """The first conv layer's kernels as little images (F, k, k): what each filter looks for."""
    return np.moveaxis(np.asarray(params["conv0_w"])[:, :, 0, :], -1, 0)


# ----------------------------------------------------------------------------- model files

def checkpoint_bytes(spec: CNNSpec, params: Params, **info: Any) -> bytes:
    """A CNN model file (.npz bytes); see engine.models.checkpoint.model_bytes."""
    return checkpoint.model_bytes(MODEL_KIND, spec, params, **info)


def read_checkpoint(data: bytes) -> tuple[CNNSpec, dict[str, np.ndarray], dict[str, Any]]:
    """(architecture, params, metadata) from a CNN model file's bytes; raises
    checkpoint.CheckpointError when it is not a valid one."""
    return checkpoint.read_model(data, MODEL_KIND, CNNSpec.from_metadata)
