"""The feed-forward net as a loss landscape's plane function (see engine.models.plane)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax

from engine.ffnn.model import STATISTICS, by_batch, stem
from engine.models.plane import Params, PlaneNet
from engine.nn.layers import JAX_OPS, activation, dense


@dataclass(frozen=True)
class DensePlaneNet(PlaneNet):
    """engine.ffnn's network: x (n, 28, 28) -> z = x·w0 (n, h0) -> logits (n, 10).

    With batch norm, each point normalises by the n digits' own statistics, as training does:
    the loss is then a function of the trained parameters alone (the stored statistics, which
    the line would move through negative variances, are not read)."""

    architecture: Any
    first: str | None = "w0"

    def product(self, x: jax.Array, w: jax.Array) -> jax.Array:
        return x.reshape(x.shape[0], -1) @ w

    def points_per_chunk(self, digits: int) -> int:
        """About 8,000 digit-points a call: its activations (~8 MB) stay in cache (measured
        faster than 2 or 4 times as many)."""
        return max(1, 8_000 // max(digits, 1))

    def reads(self, name: str) -> bool:
        return stem(name) not in STATISTICS

    def logits(self, params: Params, z: jax.Array) -> jax.Array:
        nonlinearity = activation(JAX_OPS, self.architecture.activation)
        h = z + params["b0"]
        for i in range(1, self.architecture.n_layers):
            if self.architecture.batch_norm:
                h = by_batch(params, i - 1, h, JAX_OPS)
            h = dense(nonlinearity(h), params[f"w{i}"], params[f"b{i}"])
        return h
