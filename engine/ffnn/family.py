"""The feed-forward net as a model family: what features ask of it (see engine.models.family)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from engine.data.mnist import as_float
from engine.ffnn.model import (
    MODEL_KIND,
    Architecture,
    first_layer_images,
    forward,
    init_params,
    layer_outputs,
    predict_proba,
    read_checkpoint,
)
from engine.ffnn.plane import DensePlaneNet
from engine.models.family import Family, Params
from engine.models.plane import PlaneNet
from engine.nn.layers import dense


class FeedForwardFamily(Family):
    """Dense layers over the flattened image: every unit sees every pixel."""

    kind = MODEL_KIND
    name = "feed-forward net"
    spatial = False
    unit_noun = "hidden units"

    def init_params(self, key: jax.Array, architecture: Architecture) -> dict[str, jax.Array]:
        return init_params(key, architecture)

    def read_model_file(self, data: bytes) -> tuple[Architecture, dict[str, np.ndarray],
                                                    dict[str, Any]]:
        return read_checkpoint(data)

    def logits(self, params: Params, images: jax.Array, architecture: Architecture
               ) -> jax.Array:
        return forward(params, images, arch=architecture)

    def predict_proba(self, params: Params, images: np.ndarray, architecture: Architecture
                      ) -> np.ndarray:
        return predict_proba(params, images, arch=architecture)

    def layer_names(self, architecture: Architecture) -> list[str]:
        return [*(f"hidden layer {i} ({n} units)"
                  for i, n in enumerate(architecture.hidden, start=1)), "logits (10)"]

    def activations(self, params: Params, images: np.ndarray, architecture: Architecture,
                    layer: int) -> np.ndarray:
        """The shared forward pass (batch norm by the stored statistics)."""
        return np.asarray(layer_outputs(params, as_float(images), arch=architecture)[layer])

    def unit_groups(self, architecture: Architecture) -> list[int]:
        return list(architecture.hidden)

    def unit_score(self, params: Params, image: jax.Array, index: jax.Array,
                   architecture: Architecture, group: int | None) -> jax.Array:
        """With hidden layer `group`, unit `index`'s z (x @ W + b, before the activation);
        with group None, the logit of class `index`."""
        last = architecture.n_layers - 1 if group is None else group
        x = image[None]
        seen = (x.reshape(1, -1) if last == 0
                else layer_outputs(params, x, arch=architecture)[last - 1])
        return dense(seen, params[f"w{last}"], params[f"b{last}"])[0, index]

    def first_layer_images(self, params: Params) -> np.ndarray:
        """Every first-layer unit's incoming weights as an image (units, 28, 28)."""
        return first_layer_images(params, limit=np.shape(params["w0"])[1])

    def plane_net(self, architecture: Architecture) -> PlaneNet:
        return DensePlaneNet(architecture)


FFNN = FeedForwardFamily()
