"""Where a model looks: gradient, gradient x input, SmoothGrad, Integrated Gradients, occlusion.

Each method is written once over a JAX score function, `score(images (n, 28, 28)) -> (n,)`: the
logit of the class being explained, one per image. `class_score(model, cls)` makes one for any
`engine.models.model.Model` (feed-forward or CNN); images are floats in [0, 1]. The images of a
method (noisy copies, points on a path, occluded copies) go through the model as one batch.
`explain(model, image, cls, settings)` runs every method at once, jitted per architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from engine.models.family import Family
from engine.models.model import Model

Score = Callable[[jax.Array], jax.Array]  # images (n, 28, 28) -> class logit (n,)
METHODS = {
    "gradient": "Vanilla gradient",
    "gradient_x_input": "Gradient × input",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "Integrated Gradients",
    "occlusion": "Occlusion",
}
BASELINES = ("black", "blurred", "noise")


class AttributionError(ValueError):
    """A setting no method can use (zero steps, a patch larger than the image...)."""


def class_score(model: Model, cls: int | jax.Array) -> Score:
    """score(images (n, 28, 28)) -> (n,): the logit of class `cls` under `model`."""
    def score(images: jax.Array) -> jax.Array:
        logits = model.family.logits(model.params, images, model.architecture)
        return jnp.take(logits, cls, axis=1)
    return score


# --- the methods, each over a score function --------------------------------------------------


def gradient(score: Score, images: jax.Array) -> jax.Array:
    """d score / d pixel for each image: (n, 28, 28) -> (n, 28, 28). The images are independent,
    so the gradient of the summed scores is each image's own gradient."""
    return jax.grad(lambda x: score(x).sum())(images)


def gradient_x_input(score: Score, image: jax.Array) -> jax.Array:
    """(28, 28): the gradient times the pixel, a first-order share of the score per pixel."""
    return gradient(score, image[None])[0] * image


def smoothgrad(score: Score, image: jax.Array, key: jax.Array, *, samples: int,
               noise: float | jax.Array) -> jax.Array:
    """(28, 28): the gradient averaged over `samples` copies of image (28, 28) with Gaussian
    noise of standard deviation `noise` (pixel units) added (Smilkov et al. 2017)."""
    noisy = image + noise * jax.random.normal(key, (samples, *image.shape), image.dtype)
    return gradient(score, noisy).mean(axis=0)


def trapezoid_weights(steps: int) -> jax.Array:
    """(steps + 1,) weights of the trapezoid rule on [0, 1] cut into `steps` intervals."""
    weights = jnp.full(steps + 1, 1.0 / steps).at[jnp.array([0, steps])].set(0.5 / steps)
    return weights


@dataclass(frozen=True)
class Completeness:
    """Integrated Gradients' check: its attributions add up to f(input) - f(baseline)."""

    total: float
    score_input: float
    score_baseline: float

    @property
    def gap(self) -> float:
        """f(input) - f(baseline), what the attributions should add up to."""
        return self.score_input - self.score_baseline

    @property
    def relative_error(self) -> float:
        """|total - gap| / |gap| (inf when the gap is 0 and the total is not)."""
        miss = abs(self.total - self.gap)
        return miss / abs(self.gap) if self.gap else (0.0 if miss == 0 else float("inf"))


def integrated_gradients(score: Score, image: jax.Array, baseline: jax.Array, *, steps: int
                         ) -> tuple[jax.Array, jax.Array]:
    """(attributions (28, 28), scores (2,) of [image, baseline]) by Integrated Gradients
    (Sundararajan et al. 2017): (image - baseline) times the gradient averaged along the straight
    path from baseline to image, by the trapezoid rule over `steps` intervals."""
    alphas = jnp.linspace(0.0, 1.0, steps + 1, dtype=image.dtype)[:, None, None]
    path = baseline + alphas * (image - baseline)  # (steps + 1, 28, 28)
    mean_gradient = jnp.tensordot(trapezoid_weights(steps), gradient(score, path), axes=1)
    return (image - baseline) * mean_gradient, score(jnp.stack([image, baseline]))


def occlusion_masks(side: int, patch: int, stride: int) -> np.ndarray:
    """(positions, side, side) float32: one square patch of ones per position, sliding by
    `stride` and always reaching the last row and column."""
    if not 1 <= patch <= side or not 1 <= stride <= patch:
        raise AttributionError(f"an occlusion patch must be 1 to {side} pixels wide and move "
                               f"by 1 pixel to its own width (so every pixel gets covered); "
                               f"got patch {patch}, stride {stride}.")
    starts = list(range(0, side - patch + 1, stride))
    if starts[-1] != side - patch:
        starts.append(side - patch)
    masks = np.zeros((len(starts) ** 2, side, side), np.float32)
    for i, (top, left) in enumerate((t, s) for t in starts for s in starts):
        masks[i, top:top + patch, left:left + patch] = 1.0
    return masks


def occlusion(score: Score, image: jax.Array, masks: jax.Array) -> jax.Array:
    """(28, 28): how much the score drops when a patch is blacked out (Zeiler & Fergus 2014),
    each pixel the mean drop over the patches covering it. masks: (positions, 28, 28) of 0/1."""
    drops = score(image[None]) - score(image * (1.0 - masks))  # (positions,)
    covered = masks.sum(axis=0)
    return jnp.tensordot(drops, masks, axes=1) / jnp.maximum(covered, 1.0)


# --- baselines ------------------------------------------------------------------------------


def gaussian_kernel(sigma: float) -> np.ndarray:
    """(2r + 1,) normalised Gaussian weights, r = ceil(3 sigma)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """image (h, w) blurred by a Gaussian of `sigma` pixels, zero outside (separable)."""
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2

    def same(line: np.ndarray) -> np.ndarray:
        # The centred part of the full convolution: np.convolve's own "same" returns the longer
        # of its inputs, so a kernel wider than the image would widen the image.
        return np.convolve(line, kernel, "full")[radius:radius + len(line)]

    rows = np.apply_along_axis(same, 1, np.asarray(image, np.float32))
    return np.apply_along_axis(same, 0, rows).astype(np.float32)


def baseline_image(image: np.ndarray, kind: str, *, seed: int = 0, blur_sigma: float = 4.0
                   ) -> np.ndarray:
    """The Integrated Gradients starting point (28, 28) for image (28, 28): "black" (all 0),
    "blurred" (the digit under a Gaussian blur: its shape gone, its ink kept) or "noise"
    (uniform in [0, 1]); Distill, "Visualizing the Impact of Feature Attribution Baselines"."""
    image = np.asarray(image, np.float32)
    if kind == "black":
        return np.zeros_like(image)
    if kind == "blurred":
        return gaussian_blur(image, blur_sigma)
    if kind == "noise":
        return np.random.default_rng(seed).uniform(0, 1, image.shape).astype(np.float32)
    raise AttributionError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}.")


# --- every method at once -----------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What the methods need beyond the image: SmoothGrad's samples and noise (pixel units),
    Integrated Gradients' steps and baseline, occlusion's patch and stride (pixels)."""

    samples: int = 16
    noise: float = 0.15
    steps: int = 32
    baseline: str = "black"
    patch: int = 4
    stride: int = 2
    seed: int = 0

    def check(self) -> None:
        """Raise AttributionError naming the first setting no method can use."""
        if self.samples < 1 or self.steps < 1:
            raise AttributionError("SmoothGrad needs at least 1 sample and Integrated "
                                   "Gradients at least 1 step.")
        if self.noise < 0:
            raise AttributionError("SmoothGrad's noise level cannot be negative.")
        if self.baseline not in BASELINES:
            raise AttributionError(f"unknown baseline {self.baseline!r}; choose one of "
                                   f"{', '.join(BASELINES)}.")


@dataclass(frozen=True)
class Explanation:
    """Every method's map (28, 28) for one model, image and class; IG's baseline and check."""

    cls: int
    maps: dict[str, np.ndarray]
    baseline: np.ndarray
    completeness: Completeness


@partial(jax.jit, static_argnames=("family", "architecture", "samples", "steps"))
def _all_maps(params: Any, image: jax.Array, cls: jax.Array, baseline: jax.Array,
              masks: jax.Array, noise: jax.Array, key: jax.Array, *, family: Family,
              architecture: Any, samples: int, steps: int) -> tuple[dict[str, jax.Array],
                                                                    jax.Array]:
    """Every method's map (28, 28) and IG's scores (2,) in one compiled call."""
    score = class_score(Model(family, architecture, params, {}), cls)
    ig, ig_scores = integrated_gradients(score, image, baseline, steps=steps)
    vanilla = gradient(score, image[None])[0]
    maps = {"gradient": vanilla, "gradient_x_input": vanilla * image,
            "smoothgrad": smoothgrad(score, image, key, samples=samples, noise=noise),
            "integrated_gradients": ig, "occlusion": occlusion(score, image, masks)}
    return maps, ig_scores


def explain(model: Model, image: np.ndarray, cls: int, settings: Settings = Settings()
            ) -> Explanation:
    """Every method of METHODS on one preprocessed image (28, 28) in [0, 1], class `cls`.

    Raises AttributionError for settings no method can use.
    """
    settings.check()
    image = np.asarray(image, np.float32)
    baseline = baseline_image(image, settings.baseline, seed=settings.seed)
    masks = occlusion_masks(image.shape[0], settings.patch, settings.stride)
    maps, scores = _all_maps(model.params, image, jnp.int32(cls), baseline, masks,
                             jnp.float32(settings.noise), jax.random.PRNGKey(settings.seed),
                             family=model.family, architecture=model.architecture,
                             samples=settings.samples, steps=settings.steps)
    maps = {name: np.asarray(value) for name, value in maps.items()}
    check = Completeness(float(maps["integrated_gradients"].sum()), float(scores[0]),
                         float(scores[1]))
    return Explanation(int(cls), maps, baseline, check)


def shared_limits(explanations: list[Explanation]) -> dict[str, float]:
    """{method: the largest |value| of its maps across explanations}: one symmetric colour range
    per method, so the models' maps compare (1.0 where every map is all zero)."""
    limits = {}
    for name in METHODS:
        peak = max((float(np.abs(e.maps[name]).max()) for e in explanations), default=0.0)
        limits[name] = peak if peak > 0 else 1.0
    return limits
