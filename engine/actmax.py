"""What a unit wants: activation maximisation, an input image grown by gradient ascent.

Start from a faint noisy image and repeatedly move every pixel up the gradient (jax.grad) of one
unit's score: the response of one CNN filter at the centre of its map, or one hidden unit of a
feed-forward net (both before the activation, so a silent unit still has a slope), or one
class's logit. Three things keep the picture readable
instead of adversarial noise: jitter (the image is shifted by up to a pixel at random before
each step, so only patterns that work a little off-centre survive), an L2 penalty (ink costs
something) and a smoothness penalty (neighbouring pixels should agree). Pixels stay in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from engine import cnn, ffnn
from engine.ffnn.model import layer_outputs
from engine.layers import dense
from engine.model import Model


@dataclass(frozen=True)
class Settings:
    """steps of size `step` (root-mean-square change of a pixel), random shifts of up to
    `jitter` pixels, penalty weights `l2` (on mean x^2) and `smoothness` (on the mean squared
    difference between neighbours), and the seed of the start image and the shifts."""

    steps: int = 128
    step: float = 0.05
    jitter: int = 1
    l2: float = 0.01
    smoothness: float = 0.05
    seed: int = 0


# A feed-forward net sees no neighbourhoods: with the CNN's light penalties its images saturate
# into black-and-white speckle (its logits reach ~40 while a penalty stays under 1). These
# weigh ink and jagged edges about as much as the score, and the images come out as smooth
# strokes; every unit still climbs (tests/test_actmax.py).
DENSE_SETTINGS = Settings(l2=30.0, smoothness=100.0)


def unit_score(params, image: jax.Array, index: jax.Array, *,
               spec: cnn.CNNSpec | ffnn.Architecture, block: int | None) -> jax.Array:
    """The score (a scalar) of one unit for image (28, 28), for either model (by its spec): see
    cnn_unit_score (block: a conv block) and dense_unit_score (block: a hidden layer)."""
    if isinstance(spec, ffnn.Architecture):
        return dense_unit_score(params, image, index, arch=spec, layer=block)
    return cnn_unit_score(params, image, index, spec=spec, block=block)


def dense_unit_score(params: ffnn.Params, image: jax.Array, index: jax.Array, *,
                     arch: ffnn.Architecture, layer: int | None) -> jax.Array:
    """The score of one unit of a feed-forward net for image (28, 28): with layer i (0-based
    hidden layer), unit `index`'s z (x @ W + b, before the activation); with layer None, the
    logit of class `index`. A scalar."""
    last = arch.n_layers - 1 if layer is None else layer
    x = image[None]
    seen = x.reshape(1, -1) if last == 0 else layer_outputs(params, x, arch=arch)[last - 1]
    return dense(seen, params[f"w{last}"], params[f"b{last}"])[0, index]


def cnn_unit_score(params: cnn.Params, image: jax.Array, index: jax.Array, *, spec: cnn.CNNSpec,
                   block: int | None) -> jax.Array:
    """The score of one unit for image (28, 28): with block i, filter `index`'s response (before
    ReLU) at the centre of block i's map; with block None, the logit of class `index`. A scalar.

    The centre, not the mean over the map: a filter is linear in the pixels it sees, so its mean
    response would be maximised by a blank white (or black) image.
    """
    if block is None:
        return cnn.logits(params, image[None], spec=spec)[0, index]
    x = cnn.as_nhwc(image[None])
    for i in range(block):
        _, x = cnn.conv_block(params, i, x, spec=spec)
    response = cnn.conv2d(x, params[f"conv{block}_w"], padding=spec.padding)
    centre = response.shape[1] // 2
    return response[0, centre, centre, index] + params[f"conv{block}_b"][index]


def penalty(image: jax.Array, settings: Settings) -> jax.Array:
    """What an image (28, 28) costs: l2 * mean x^2 + smoothness * mean squared neighbour step."""
    steps = jnp.mean(jnp.diff(image, axis=0) ** 2) + jnp.mean(jnp.diff(image, axis=1) ** 2)
    return settings.l2 * jnp.mean(image**2) + settings.smoothness * steps


def _ascend(params, start, index, key, *, spec, block, settings: Settings) -> jax.Array:
    """Gradient ascent for one unit from start (28, 28): the final image (28, 28)."""

    def objective(image, shift):
        moved = jnp.roll(image, shift, axis=(0, 1))
        return unit_score(params, moved, index, spec=spec, block=block) - penalty(image, settings)

    def step(image, key):
        shift = jax.random.randint(key, (2,), -settings.jitter, settings.jitter + 1)
        slope = jax.grad(objective)(image, shift)
        # A normalised step: every unit climbs at the same pace, whatever its gradient's scale.
        image = image + settings.step * slope / (jnp.sqrt(jnp.mean(slope**2)) + 1e-12)
        return jnp.clip(image, 0.0, 1.0), None

    image, _ = jax.lax.scan(step, start, jax.random.split(key, settings.steps))
    return image


@partial(jax.jit, static_argnames=("spec", "block", "settings", "n"))
def _climb_all(params, start, key, *, spec, block, settings: Settings, n: int):
    """Every unit 0..n-1 from the same start: (images (n, 28, 28), start scores (n,), end
    scores (n,)), in one compiled program."""

    def one(index):
        image = _ascend(params, start, index, key, spec=spec, block=block, settings=settings)
        score = partial(unit_score, params, index=index, spec=spec, block=block)
        return image, score(start), score(image)

    return jax.vmap(one)(jnp.arange(n))


def unit_count(model: Model, block: int | None) -> int:
    """How many units a group has: block i's filters (CNN) or hidden layer i's units (FFNN), or
    the 10 classes (block None). Raises IndexError for a block or layer the model lacks."""
    spec = model.architecture
    if block is None:
        return 10
    if model.kind == "ffnn":
        if not 0 <= block < len(spec.hidden):
            raise IndexError(f"hidden layer {block + 1} does not exist: this net has "
                             f"{len(spec.hidden)}")
        return spec.hidden[block]
    if not 0 <= block < spec.blocks:
        raise IndexError(f"block {block + 1} does not exist: this CNN has {spec.blocks}")
    return spec.filters[block]


def receptive_field(spec: cnn.CNNSpec, block: int) -> int:
    """The side, in input pixels, of what one unit of block `block` (0-based) sees: each conv
    widens it by (kernel - 1) steps of the current stride, each pooling by (2 - 1) and doubles
    the stride."""
    side, stride = 1, 1
    for i in range(block + 1):
        side += (spec.kernel_size - 1) * stride
        if i < block and spec.pool != "none":
            side += (cnn.POOL_SIZE - 1) * stride
            stride *= cnn.POOL_SIZE
    return side


def what_units_want(model: Model, block: int | None, settings: Settings | None = None, *,
                    first: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every filter of CNN block `block` (0-based), every unit of FFNN hidden layer `block`,
    or every class when block is None (only the first `first` units, if given): (images (n, 28,
    28) in [0, 1], each unit's score on the start image (n,), on its own final image (n,)). The
    same start image and shifts for every unit (fixed by settings.seed); settings None: the
    model kind's own (DENSE_SETTINGS for a feed-forward net)."""
    settings = settings or (DENSE_SETTINGS if model.kind == "ffnn" else Settings())
    n = min(unit_count(model, block), first or unit_count(model, block))
    start_key, shift_key = jax.random.split(jax.random.PRNGKey(settings.seed))
    start = jnp.clip(0.1 + 0.05 * jax.random.normal(start_key, (28, 28)), 0.0, 1.0)
    images, starts, ends = _climb_all(model.params, start, shift_key, spec=model.architecture,
                                      block=block, settings=settings, n=n)
    return np.asarray(images), np.asarray(starts), np.asarray(ends)
