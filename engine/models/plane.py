"""A network seen as a plane's function: what a family gives the loss landscape to evaluate.

Moving the weights along a plane moves the first layer's product along the same plane, exactly,
so a family whose first layer is a product splits it off (`first`, `product`) and the landscape
computes it three times a plane instead of once a point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

Params = Mapping[str, Any]  # a model's flat {name: array}


class PlaneNet:
    """A network seen as its first layer's product, linear in that layer's weight, and the rest.

    Moving the weights along a plane moves the product along the same plane, exactly:
    x (W + a D1 + b D2) = xW + a xD1 + b xD2. So that product (a dense net's costliest) is
    computed three times per plane instead of once per point. Subclasses are frozen dataclasses
    (hashable: `jax.jit` compiles once per architecture) with `first` (the weight's name; None:
    no split, z is the data itself), `product(x, w)` and `logits(params, z)` (z: the product at
    those params).
    """

    first: str | None
    # The grid and evaluation digits a landscape view starts from (a costly point: fewer).
    preferred_resolution = 21
    preferred_digits = 1000

    def product(self, x: jax.Array, w: jax.Array) -> jax.Array:
        raise NotImplementedError

    def logits(self, params: Params, z: jax.Array) -> jax.Array:
        raise NotImplementedError

    def points_per_chunk(self, digits: int) -> int:
        """Grid points evaluated per jitted call on `digits` digits (one, unless a family's
        points are cheap enough to batch)."""
        return 1

    def reads(self, name: str) -> bool:
        """Whether the loss depends on parameter `name` (False: a stored statistic it skips)."""
        return True

    def metrics(self, params: Params, z: jax.Array, y: jax.Array) -> jax.Array:
        """[softmax cross-entropy, accuracy] (2,) of labels y (n,) int."""
        scores = self.logits(params, z)
        log_p = jax.nn.log_softmax(scores)
        loss = -jnp.take_along_axis(log_p, y[:, None], axis=1).mean()
        return jnp.stack([loss, (scores.argmax(axis=1) == y).mean()])
