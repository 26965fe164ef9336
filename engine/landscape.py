"""Loss landscapes of a network: 1-D interpolation, 2-D filter-normalised slices, the PCA path.

After Goodfellow et al. 2015 (the loss along the straight line from the initial to the final
weights) and Li et al. 2018 (random directions normalised filter by filter to the weights'
norms; the training path projected on the top two PCA directions of the weight history).

A *metrics* function maps parameters to a small vector, here (loss, accuracy) on a fixed
evaluation subset. `grid_evaluator` compiles it once over a chunk of points of a plane
(`jax.vmap` over the points) so a caller can compute a grid row by row, with a progress bar
and a way to stop between rows.

    metrics = network_metrics(model.kind, model.architecture, x, y)
    d1, d2 = random_directions(jax.random.key(0), model.params)
    evaluate = grid_evaluator(metrics, model.params, [d1, d2])
    rows = [evaluate(points) for points in grid_points(alphas, betas)]   # (n_alpha, 2) each
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from engine.settings import Limits

Params = Mapping[str, Any]  # a model's flat {name: array}
Metrics = Callable[[Params], jax.Array]  # params -> (n_metrics,)


class LandscapeError(ValueError):
    """A landscape request over this server's limits, or one that cannot be computed."""


# ----------------------------------------------------------------------------- parameters

def flat_parameters(params: Params) -> np.ndarray:
    """All parameters as one float32 vector (P,), arrays in sorted name order, each raveled."""
    return np.concatenate([np.ravel(np.asarray(params[name], np.float32))
                           for name in sorted(params)])


def unflatten(vector: np.ndarray, like: Params) -> dict[str, np.ndarray]:
    """Inverse of `flat_parameters`: the vector (P,) cut into arrays shaped as `like`'s."""
    shapes = {name: np.shape(like[name]) for name in sorted(like)}
    sizes = [int(np.prod(shape)) for shape in shapes.values()]
    if sum(sizes) != len(vector):
        raise LandscapeError(f"a vector of {len(vector)} numbers does not fit parameters "
                             f"of {sum(sizes)}")
    pieces = np.split(np.asarray(vector, np.float32), np.cumsum(sizes)[:-1])
    return {name: piece.reshape(shape)
            for (name, shape), piece in zip(shapes.items(), pieces, strict=True)}


def filter_normalized(direction: Params, params: Params) -> dict[str, np.ndarray]:
    """Li et al.'s filter normalisation: each filter of `direction` rescaled to the norm of the
    same filter of `params`.

    A filter is one output unit's weights: a slice along the last axis of a weight array
    (dense (in, out), conv (k, k, in, out)). Biases (1-D arrays) get a zero direction, as in
    Li et al.'s default, so that the plot moves the weights only.
    """
    out = {}
    for name, d in direction.items():
        d, w = np.asarray(d, np.float32), np.asarray(params[name], np.float32)
        if d.ndim < 2:
            out[name] = np.zeros_like(d)
            continue
        axes = tuple(range(d.ndim - 1))
        d_norm = np.sqrt((d * d).sum(axis=axes, keepdims=True))
        w_norm = np.sqrt((w * w).sum(axis=axes, keepdims=True))
        out[name] = d * w_norm / np.maximum(d_norm, 1e-12)
    return out


def random_directions(key: jax.Array, params: Params, count: int = 2
                      ) -> list[dict[str, np.ndarray]]:
    """`count` Gaussian directions shaped as `params`, each filter-normalised to it."""
    noise = np.asarray(jax.random.normal(key, (count, len(flat_parameters(params)))))
    return [filter_normalized(unflatten(row, params), params) for row in noise]


# ----------------------------------------------------------------------------- evaluating planes

def grid_evaluator(metrics: Metrics, params: Params, directions: Sequence[Params],
                   batch_size: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """evaluate(points (m, k)) -> metrics (m, n_metrics) at params + sum_i points[:, i] d_i.

    Compiled once (jax.vmap over the points, batch_size of them at a time: a CNN's activations
    for 1,000 digits are ~0.5 GB a point); every call of the same m reuses it.
    """
    origin = jax.tree_util.tree_map(jnp.asarray, dict(params))
    stacked = {name: jnp.stack([jnp.asarray(d[name]) for d in directions]) for name in origin}

    @jax.jit
    def evaluate(points: jax.Array) -> jax.Array:
        def at(point):
            moved = {name: origin[name] + jnp.tensordot(point, stacked[name], axes=1)
                     for name in origin}
            return metrics(moved)

        if batch_size is None:
            return jax.vmap(at)(points)
        return jax.lax.map(at, points, batch_size=batch_size)  # vmapped batch by batch

    return lambda points: np.asarray(evaluate(jnp.asarray(points, jnp.float32)))


def grid_points(alphas: np.ndarray, betas: np.ndarray) -> Iterator[np.ndarray]:
    """The plane's points row by row: for each beta, (len(alphas), 2) of (alpha, beta)."""
    for beta in betas:
        yield np.column_stack([alphas, np.full(len(alphas), beta)])


def evaluate_grid(evaluate: Callable[[np.ndarray], np.ndarray], alphas: np.ndarray,
                  betas: np.ndarray) -> np.ndarray:
    """Metrics over the whole grid: (len(betas), len(alphas), n_metrics), indexed [beta, alpha]."""
    return np.stack([evaluate(points) for points in grid_points(alphas, betas)])


# ----------------------------------------------------------------------------- networks

def network_metrics(kind: str, architecture: Any, x: np.ndarray, y: np.ndarray) -> Metrics:
    """params -> [softmax cross-entropy, accuracy] of a "ffnn" or "cnn" model on x (n, 28, 28)
    float in [0, 1], y (n,) int."""
    from engine import cnn, ffnn  # the families import this module for their snapshots

    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y)
    if kind == "ffnn":
        def logits(params):
            return ffnn.logits(params, x, arch=architecture)
    elif kind == "cnn":
        def logits(params):
            return cnn.logits(params, x, spec=architecture)
    else:
        raise LandscapeError(f"no landscape for a model of kind {kind!r}")

    def metrics(params: Params) -> jax.Array:
        scores = logits(params)
        log_p = jax.nn.log_softmax(scores)
        loss = -jnp.take_along_axis(log_p, y[:, None], axis=1).mean()
        return jnp.stack([loss, (scores.argmax(axis=1) == y).mean()])

    return metrics


def points_per_batch(kind: str, digits: int) -> int | None:
    """How many grid points to evaluate at once: all of a row for a small dense net; for a CNN
    as many as keep its activations near 0.5 GB (about 1,000 digit-points)."""
    return None if kind == "ffnn" else max(1, 1000 // max(digits, 1))


def evaluation_subset(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, evenly spaced subset of `size` digits: x (size, 28, 28), y (size,)."""
    keep = np.linspace(0, len(x) - 1, min(size, len(x))).round().astype(int)
    return x[keep], y[keep]


def grid_problems(resolution: int, subset: int, limits: Limits) -> list[str]:
    """Why a grid of resolution x resolution points on `subset` digits may not be computed
    here (empty if it may)."""
    problems = []
    if resolution > limits.max_landscape_grid:
        problems.append(f"a {resolution}×{resolution} grid is over this server's limit of "
                        f"{limits.max_landscape_grid}×{limits.max_landscape_grid}.")
    if subset > limits.max_landscape_digits:
        problems.append(f"{subset:,} digits is over this server's limit of "
                        f"{limits.max_landscape_digits:,} for a landscape.")
    if resolution < 3:
        problems.append("a grid needs at least 3 points a side.")
    return problems


# ----------------------------------------------------------------------------- the training path

@dataclass(frozen=True)
class PCAPath:
    """The weight history seen in its top two principal directions.

    directions (2, P): unit vectors in weight space. explained (2,): the share of the history's
    variance along each. coordinates (T, 2): each snapshot minus the final weights, projected
    on the directions (the final weights at (0, 0)).
    """

    directions: np.ndarray
    explained: np.ndarray
    coordinates: np.ndarray


def pca_path(snapshots: np.ndarray, final: np.ndarray) -> PCAPath:
    """PCA of the trajectory snapshots (T, P) (T >= 2), relative to the final weights (P,)."""
    if len(snapshots) < 2:
        raise LandscapeError("the training path needs at least two weight snapshots")
    moves = np.asarray(snapshots, np.float64) - np.asarray(final, np.float64)
    centred = moves - moves.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    explained = variance[:2] / max(variance.sum(), 1e-300)
    directions = vt[:2]
    if len(directions) < 2:  # two snapshots: one direction; any orthogonal one completes it
        extra = np.random.default_rng(0).normal(size=moves.shape[1])
        extra -= extra @ directions[0] * directions[0]
        directions = np.vstack([directions, extra / np.linalg.norm(extra)])
        explained = np.append(explained, 0.0)
    return PCAPath(directions, explained, moves @ directions.T)


def initial_params(kind: str, architecture: Any, seed: int) -> dict[str, np.ndarray]:
    """The fresh weights a run of this seed starts from (as `training_run` draws them)."""
    from engine import cnn, ffnn

    family = {"ffnn": ffnn, "cnn": cnn}.get(kind)
    if family is None:
        raise LandscapeError(f"no landscape for a model of kind {kind!r}")
    params = family.init_params(jax.random.key(seed), architecture)
    return {name: np.asarray(value) for name, value in params.items()}
