"""The CNN as a loss landscape's plane function (see engine.models.plane)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from engine.cnn.layers import conv_relu_pool_direct, swap_batch_and_channels
from engine.cnn.model import as_nhwc, forward_chwn
from engine.models.plane import Params, PlaneNet


@dataclass(frozen=True)
class ConvPlaneNet(PlaneNet):
    """engine.cnn's network, whole at each point: z = x (n, 28, 28) -> logits (n, 10).

    No split: its first product (F0 maps a digit) is cheap to compute but costly to read back
    three times a point. A point's digits go in
    groups of `passes_per_group` passes of `digits_per_pass` (the last group padded): a group's
    first block at once by `conv_relu_pool_direct` (fused shifted multiply-adds; inside a pass
    XLA fused it into each of the next im2col's nine slices, computing it nine times), then
    pass by pass the other blocks through our convolution (channels first: one matmul a conv),
    so that a pass's maps stay in cache. A pass of 16 digits fills whole AVX-512 vectors along
    the batch axis. What each choice cost is in the README's benchmark notes (figure L3)."""

    architecture: Any
    first: str | None = None
    preferred_resolution = 11  # a CNN point costs ~100x a dense net's: a coarser default
    preferred_digits = 200
    digits_per_pass: int = 16
    passes_per_group: int = 8

    def logits(self, params: Params, z: jax.Array) -> jax.Array:
        spec, per, n = self.architecture, self.digits_per_pass, z.shape[0]
        passes = -(-n // per)
        groups = -(-passes // self.passes_per_group)
        group = -(-passes // groups)  # passes a group, spread evenly: little padding
        padded = jnp.pad(as_nhwc(z), [(0, groups * group * per - n), (0, 0), (0, 0), (0, 0)])
        chwn = jax.vmap(jax.vmap(swap_batch_and_channels))(  # (groups, group, 1, 28, 28, per)
            padded.reshape(groups, group, per, *padded.shape[1:]))

        def first_block(x: jax.Array) -> jax.Array:
            return conv_relu_pool_direct(x, params["conv0_w"], params["conv0_b"],
                                         pool=spec.pool, padding=spec.padding)

        def rest(x: jax.Array) -> jax.Array:
            return forward_chwn(params, x, spec=spec, start=1)[0]

        def group_scores(x: jax.Array) -> jax.Array:  # (group, 1, 28, 28, per) -> (group, per, 10)
            return jax.lax.map(rest, jax.vmap(first_block)(x))

        scores = jax.lax.map(group_scores, chwn)
        return scores.reshape(groups * group * per, -1)[:n]
