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

from engine.cnn.layers import POOL_SIZE
from engine.cnn.model import CNNSpec
from engine.models.family import Family
from engine.models.model import Model


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
# strokes; every unit still climbs (tests/engine/explain/test_actmax.py).
DENSE_SETTINGS = Settings(l2=30.0, smoothness=100.0)


def penalty(image: jax.Array, settings: Settings) -> jax.Array:
    """What an image (28, 28) costs: l2 * mean x^2 + smoothness * mean squared neighbour step."""
    steps = jnp.mean(jnp.diff(image, axis=0) ** 2) + jnp.mean(jnp.diff(image, axis=1) ** 2)
    return settings.l2 * jnp.mean(image**2) + settings.smoothness * steps


def _ascend(params, start, index, key, *, family: Family, architecture, block,
            settings: Settings) -> jax.Array:
    """Gradient ascent for one unit from start (28, 28): the final image (28, 28)."""

    def objective(image, shift):
        moved = jnp.roll(image, shift, axis=(0, 1))
        score = family.unit_score(params, moved, index, architecture, block)
        return score - penalty(image, settings)

    def step(image, key):
        shift = jax.random.randint(key, (2,), -settings.jitter, settings.jitter + 1)
        slope = jax.grad(objective)(image, shift)
        # A normalised step: every unit climbs at the same pace, whatever its gradient's scale.
        image = image + settings.step * slope / (jnp.sqrt(jnp.mean(slope**2)) + 1e-12)
        return jnp.clip(image, 0.0, 1.0), None

    image, _ = jax.lax.scan(step, start, jax.random.split(key, settings.steps))
    return image


@partial(jax.jit, static_argnames=("family", "architecture", "block", "settings", "n"))
def _climb_all(params, start, key, *, family: Family, architecture, block, settings: Settings,
               n: int):
    """Every unit 0..n-1 from the same start: (images (n, 28, 28), start scores (n,), end
    scores (n,)), in one compiled program."""

    def one(index):
        image = _ascend(params, start, index, key, family=family, architecture=architecture,
                        block=block, settings=settings)

        def score(image):
            return family.unit_score(params, image, index, architecture, block)

        return image, score(start), score(image)

    return jax.vmap(one)(jnp.arange(n))


def unit_count(model: Model, block: int | None) -> int:
    """How many units a group has: block i's filters (CNN) or hidden layer i's units (FFNN), or
    the 10 classes (block None). Raises IndexError for a block or layer the model lacks."""
    if block is None:
        return 10
    groups = model.family.unit_groups(model.architecture)
    if not 0 <= block < len(groups):
        raise IndexError(f"there is no group {block + 1} of {model.family.unit_noun}: this "
                         f"{model.family.name} has {len(groups)}")
    return groups[block]


def receptive_field(spec: CNNSpec, block: int) -> int:
    """The side, in input pixels, of what one unit of block `block` (0-based) sees: each conv
    widens it by (kernel - 1) steps of the current stride, each pooling by (2 - 1) and doubles
    the stride."""
    side, stride = 1, 1
    for i in range(block + 1):
        side += (spec.kernel_size - 1) * stride
        if i < block and spec.pool != "none":
            side += (POOL_SIZE - 1) * stride
            stride *= POOL_SIZE
    return side


def what_units_want(model: Model, block: int | None, settings: Settings | None = None, *,
                    first: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every filter of CNN block `block` (0-based), every unit of FFNN hidden layer `block`,
    or every class when block is None (only the first `first` units, if given): (images (n, 28,
    28) in [0, 1], each unit's score on the start image (n,), on its own final image (n,)). The
    same start image and shifts for every unit (fixed by settings.seed); settings None: the
    family's own (DENSE_SETTINGS for a family whose units see the whole image)."""
    settings = settings or (Settings() if model.family.spatial else DENSE_SETTINGS)
    n = min(unit_count(model, block), first or unit_count(model, block))
    start_key, shift_key = jax.random.split(jax.random.PRNGKey(settings.seed))
    start = jnp.clip(0.1 + 0.05 * jax.random.normal(start_key, (28, 28)), 0.0, 1.0)
    images, starts, ends = _climb_all(model.params, start, shift_key, family=model.family,
                                      architecture=model.architecture, block=block,
                                      settings=settings, n=n)
    return np.asarray(images), np.asarray(starts), np.asarray(ends)
