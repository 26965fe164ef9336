"""The CNN as a model family: what features ask of it (see engine.models.family)."""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import numpy as np

from engine.cnn.layers import conv2d
from engine.cnn.model import (
    EVAL_BATCH,
    MODEL_KIND,
    CNNSpec,
    as_nhwc,
    batched_proba,
    conv_block,
    first_layer_filters,
    init_params,
    logits,
    read_checkpoint,
)
from engine.cnn.plane import ConvPlaneNet
from engine.cnn.snapshot import Snapshot
from engine.data.mnist import as_float
from engine.models.family import Family, Params
from engine.models.plane import PlaneNet


class ConvFamily(Family):
    """Convolution blocks (conv, ReLU, pooling) then one dense layer: units see neighbourhoods."""

    kind = MODEL_KIND
    name = "CNN"
    spatial = True
    unit_noun = "filters"
    read_snapshot = staticmethod(Snapshot.from_record)

    def init_params(self, key: jax.Array, architecture: CNNSpec) -> dict[str, jax.Array]:
        return init_params(key, architecture)

    def read_model_file(self, data: bytes) -> tuple[CNNSpec, dict[str, np.ndarray],
                                                    dict[str, Any]]:
        return read_checkpoint(data)

    def logits(self, params: Params, images: jax.Array, architecture: CNNSpec) -> jax.Array:
        return logits(params, images, spec=architecture)

    def predict_proba(self, params: Params, images: np.ndarray, architecture: CNNSpec
                      ) -> np.ndarray:
        return batched_proba(params, images, spec=architecture)

    def layer_names(self, architecture: CNNSpec) -> list[str]:
        sizes = zip(architecture.map_sizes(), architecture.filters, strict=True)
        return [*(f"block {i} ({side}x{side}x{f})" for i, (side, f) in enumerate(sizes, start=1)),
                "logits (10)"]

    def activations(self, params: Params, images: np.ndarray, architecture: CNNSpec,
                    layer: int) -> np.ndarray:
        """Block `layer`'s output (after pooling) flattened, EVAL_BATCH digits at a time."""
        images = as_float(np.asarray(images))
        return np.concatenate([
            np.asarray(block_output(params, images[start:start + EVAL_BATCH], spec=architecture,
                                    layer=layer))
            for start in range(0, len(images), EVAL_BATCH)])

    def unit_groups(self, architecture: CNNSpec) -> list[int]:
        return list(architecture.filters)

    def unit_score(self, params: Params, image: jax.Array, index: jax.Array,
                   architecture: CNNSpec, group: int | None) -> jax.Array:
        """With block `group`, filter `index`'s response (before ReLU) at the centre of the
        block's map; with group None, the logit of class `index`.

        The centre, not the mean over the map: a filter is linear in the pixels it sees, so its
        mean response would be maximised by a blank white (or black) image.
        """
        if group is None:
            return logits(params, image[None], spec=architecture)[0, index]
        x = as_nhwc(image[None])
        for i in range(group):
            _, x = conv_block(params, i, x, spec=architecture)
        response = conv2d(x, params[f"conv{group}_w"], padding=architecture.padding)
        centre = response.shape[1] // 2
        return response[0, centre, centre, index] + params[f"conv{group}_b"][index]

    def first_layer_images(self, params: Params) -> np.ndarray:
        """The first convolution's kernels (filters, k, k)."""
        return first_layer_filters(params)

    def plane_net(self, architecture: CNNSpec) -> PlaneNet:
        return ConvPlaneNet(architecture)


@partial(jax.jit, static_argnames=("spec", "layer"))
def block_output(params: Params, images: jax.Array, *, spec: CNNSpec, layer: int) -> jax.Array:
    """Images (n, 28, 28) -> (n, units): block `layer`'s output (after pooling), flattened, or
    the logits (n, 10) when layer == spec.blocks."""
    if layer == spec.blocks:
        return logits(params, images, spec=spec)
    x = as_nhwc(images)
    for i in range(layer + 1):
        _, x = conv_block(params, i, x, spec=spec)
    return x.reshape(x.shape[0], -1)


CNN = ConvFamily()
