"""Loss landscapes of a network: 1-D interpolation, 2-D filter-normalised slices, the PCA path.

After Goodfellow et al. 2015 (the loss along the straight line from the initial to the final
weights) and Li et al. 2018 (random directions normalised filter by filter to the weights'
norms; the training path projected on the top two PCA directions of the weight history).

A network is seen as a `PlaneNet`: its first layer's product, linear in that layer's weight,
and the rest (a dense net; a CNN runs whole at each point). A plane's points are evaluated
`jax.vmap`ped, a fixed-size chunk per call (one compile per architecture), on a fixed
evaluation subset; `landscape_events` runs a whole job (the line, the random slice, the path's
plane) chunk by chunk, an event after each, and stops between two chunks when asked, so the
run service can run it in the background.

    job = LandscapeJob(model.family, model.architecture, model.params, initial, snapshots,
                       steps, x, y, resolution=21)
    for event in landscape_events(job, stop=threading.Event()):
        print(event.text)                # ... the last event carries event.landscape
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from engine.app.settings import Limits
from engine.models.family import Family
from engine.models.plane import PlaneNet
from engine.nn.params import flat_parameters, unflatten
from engine.training.status import RunStatus

Params = Mapping[str, Any]  # a model's flat {name: array}
Metrics = Callable[[Params], jax.Array]  # params -> (n_metrics,)


class LandscapeError(ValueError):
    """A landscape request over this server's limits, or one that cannot be computed."""


# ----------------------------------------------------------------------------- directions

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


def random_directions(seed: int, params: Params, count: int = 2) -> list[dict[str, np.ndarray]]:
    """`count` Gaussian directions shaped as `params`, each filter-normalised to it (numpy's
    generator: nothing to compile)."""
    noise = np.random.default_rng(seed).standard_normal(
        (count, len(flat_parameters(params))), dtype=np.float32)
    return [filter_normalized(unflatten(row, params), params) for row in noise]


# ----------------------------------------------------------------------------- networks

# ----------------------------------------------------------------------------- evaluating planes

@partial(jax.jit, static_argnames="net")
def first_products(net: PlaneNet, origin: Params, directions: Params, x: jax.Array
                   ) -> tuple[jax.Array, jax.Array | None]:
    """(x·W, x·D_i): the first layer's product at the origin (n, ...) and along each of the k
    directions (k, n, ...). directions: {name: (k, *shape)}. (x, None) for a net without one."""
    if net.first is None:
        return x, None
    along = jax.vmap(lambda d: net.product(x, d))(directions[net.first])
    return net.product(x, origin[net.first]), along


@partial(jax.jit, static_argnames="net")
def chunk_metrics(net: PlaneNet, origin: Params, directions: Params,
                  products: tuple[jax.Array, jax.Array | None], points: jax.Array,
                  y: jax.Array
                  ) -> jax.Array:
    """Metrics (m, n_metrics) at origin + sum_i points[:, i] d_i, for points (m, k): one
    compile per net and chunk shape, whatever the weights, directions and data."""
    base, along = products

    def at(point: jax.Array) -> jax.Array:
        moved = {name: origin[name] + jnp.tensordot(point, directions[name], axes=1)
                 for name in origin}  # a split net's first: unused (in z)
        z = base if along is None else base + jnp.tensordot(point, along, axes=1)
        return net.metrics(moved, z, y)

    return jax.vmap(at)(points)


WORKERS = os.cpu_count() or 1  # chunks evaluated side by side (see `plane_values`)


def plane_values(net: PlaneNet, origin: Params, directions: Sequence[Params],
                 points: np.ndarray, x: np.ndarray, y: np.ndarray, chunk: int,
                 workers: int = WORKERS) -> Iterator[np.ndarray]:
    """The metrics at origin + sum_i points[:, i] directions[i] for points (m, k), `chunk`
    points per call: yields (<= chunk, n_metrics) arrays in order. The last chunk is padded
    with zeros, so every call reuses one compile.

    `workers` threads evaluate chunks side by side, at most that many at once: XLA runs a
    chunk's small operations on one core, so two chunks at a time on 2 cores take about the
    time of one (figure L3). Closing the generator waits
    for the chunks already started."""
    origin = {name: jnp.asarray(value, jnp.float32) for name, value in origin.items()}
    stacked = {name: jnp.stack([jnp.asarray(d[name], jnp.float32) for d in directions])
               for name in origin}
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y)
    products = first_products(net, origin, stacked, x)

    def values_at(start: int) -> np.ndarray:
        part = np.asarray(points[start:start + chunk], np.float32)
        padded = np.zeros((chunk, len(directions)), np.float32)
        padded[:len(part)] = part
        return np.asarray(chunk_metrics(net, origin, stacked, products, padded, y))[:len(part)]

    with ThreadPoolExecutor(max(1, workers)) as pool:
        started: deque[Future] = deque()
        for start in range(0, len(points), chunk):
            started.append(pool.submit(values_at, start))
            if len(started) >= workers:
                yield started.popleft().result()
        while started:
            yield started.popleft().result()


def grid(alphas: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """The plane's points (len(betas) * len(alphas), 2) of (alpha, beta), alpha fastest: row
    by row, so values reshape to (len(betas), len(alphas), ...) indexed [beta, alpha]."""
    a, b = np.meshgrid(alphas, betas)
    return np.column_stack([a.ravel(), b.ravel()])


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


def initial_params(family: Family, architecture: Any, seed: int) -> dict[str, np.ndarray]:
    """The fresh weights a run of this seed starts from (as `training_run` draws them)."""
    params = family.init_params(jax.random.key(seed), architecture)
    return {name: np.asarray(value) for name, value in params.items()}


# ----------------------------------------------------------------------------- a landscape job

LINE_ALPHAS = np.linspace(-0.5, 1.5, 41)  # Goodfellow et al.'s interpolation, and beyond
SLICE_SPAN = 1.0  # the random slice covers [-SLICE_SPAN, SLICE_SPAN] along each direction
PATH_MARGIN = 0.2  # the PCA plane reaches this share of the path's extent beyond it


@dataclass(frozen=True)
class LandscapeJob:
    """What one landscape computes. final: the model's weights; initial: the run's first
    weights (None: no 1-D line); snapshots (T, P): flat weights recorded along the run at
    `steps` (T,) (T < 2: no path); x (n, 28, 28) floats in [0, 1], y (n,): the evaluation
    subset; resolution: grid points a side."""

    family: Family
    architecture: Any
    final: Params
    initial: Params | None
    snapshots: np.ndarray | None
    steps: tuple[int, ...]
    x: np.ndarray
    y: np.ndarray
    resolution: int


@dataclass(frozen=True)
class Landscape:
    """A computed landscape; every grid is (n, n, 2) of (loss, accuracy), indexed [beta, alpha].

    line (41, 2): along LINE_ALPHAS from the initial (0) to the final (1) weights, or None.
    axis (n,), slice: over two filter-normalised random directions around the final weights.
    path: the PCA of the run's weights, or None; path_axes (xs (n,), ys (n,)) and path_grid:
    the loss over its plane; steps (T,): the training step of each point of the path.
    """

    line: np.ndarray | None
    axis: np.ndarray
    slice: np.ndarray
    path: PCAPath | None = None
    path_axes: tuple[np.ndarray, np.ndarray] | None = None
    path_grid: np.ndarray | None = None
    steps: tuple[int, ...] = ()


@dataclass(frozen=True)
class LandscapeEvent:
    """One event of a landscape job: `step` of `total_steps` points done, described by `text`;
    the last one has status "finished" (with the landscape) or "stopped". Its fields are the
    ones `engine.training.service` reads of a training event, so the run service runs a landscape
    job as it runs training (a thread, a slot, a stop, abandonment); it makes no model to save."""

    step: int
    total_steps: int
    text: str
    status: RunStatus = RunStatus.RUNNING
    message: str = ""
    landscape: Landscape | None = None
    model: None = None


@dataclass(frozen=True)
class Plane:
    """One plane of a job: its name, origin, directions and points (m, k)."""

    name: str
    origin: Params
    directions: list[dict[str, np.ndarray]]
    points: np.ndarray


def read_coordinates(net: PlaneNet, params: Params) -> np.ndarray:
    """A mask (P,) of `flat_parameters(params)`: True where the net's loss reads the coordinate."""
    return np.concatenate([np.full(np.size(params[name]), net.reads(name))
                           for name in sorted(params)])


def job_planes(job: LandscapeJob, net: PlaneNet) -> tuple[list[Plane], PCAPath | None]:
    """The planes a job evaluates, in order (line, slice, path), and its PCA path if any: the
    PCA of the coordinates the net reads (a batch norm's stored statistics, which a run's
    snapshots also record, would otherwise tilt the plane toward directions the loss ignores)."""
    n, final = job.resolution, job.final
    planes = []
    if job.initial is not None:
        line = {name: np.asarray(final[name]) - job.initial[name] for name in job.initial}
        zero = {name: np.zeros_like(value) for name, value in line.items()}  # two directions:
        planes.append(Plane("line", job.initial, [line, zero],  # one compile for every plane
                            np.column_stack([LINE_ALPHAS, np.zeros_like(LINE_ALPHAS)])))
    axis = np.linspace(-SLICE_SPAN, SLICE_SPAN, n)
    planes.append(Plane("slice", final, random_directions(0, final), grid(axis, axis)))
    path = None
    if job.snapshots is not None and len(job.snapshots) >= 2:
        read = read_coordinates(net, final)
        path = pca_path(job.snapshots * read, flat_parameters(final) * read)
        xs, ys = path_axes(path, n)
        planes.append(Plane("path", final, [unflatten(d, final) for d in path.directions],
                            grid(xs, ys)))
    return planes, path


def path_axes(path: PCAPath, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n coordinates (n,) along each PCA direction covering the path and a margin around it."""
    low, high = path.coordinates.min(axis=0), path.coordinates.max(axis=0)
    pad = np.maximum((high - low) * PATH_MARGIN, 1e-3)
    return np.linspace(low[0] - pad[0], high[0] + pad[0], n), \
        np.linspace(low[1] - pad[1], high[1] + pad[1], n)


PLANE_TITLES = {"line": "the line from the initial weights", "slice": "the random slice",
                "path": "the plane of the training path"}


def landscape_events(job: LandscapeJob, stop: threading.Event) -> Iterator[LandscapeEvent]:
    """Compute the job chunk by chunk, an event after each; between two chunks, a set `stop`
    ends it (a last event with status "stopped")."""
    net = job.family.plane_net(job.architecture)
    planes, path = job_planes(job, net)
    chunk = net.points_per_chunk(len(job.x))
    total, done, values = sum(len(p.points) for p in planes), 0, {}
    for plane in planes:
        parts = []
        for part in plane_values(net, plane.origin, plane.directions, plane.points, job.x,
                                 job.y, chunk):
            parts.append(part)
            done += len(part)
            yield LandscapeEvent(done, total, f"{PLANE_TITLES[plane.name]}: point {done:,} "
                                              f"of {total:,}")
            if stop.is_set():
                yield LandscapeEvent(done, total, RunStatus.STOPPED, RunStatus.STOPPED,
                                     f"Stopped after {done:,} of {total:,} points.")
                return
        values[plane.name] = np.concatenate(parts)
    yield LandscapeEvent(done, total, "done", RunStatus.FINISHED, f"{total:,} points computed.",
                         assemble(job, values, path))


def assemble(job: LandscapeJob, values: Mapping[str, np.ndarray], path: PCAPath | None
             ) -> Landscape:
    """The Landscape from each plane's values (m, 2), in its points' order."""
    n = job.resolution
    landscape = Landscape(values.get("line"), np.linspace(-SLICE_SPAN, SLICE_SPAN, n),
                          values["slice"].reshape(n, n, -1))
    if path is None:
        return landscape
    return replace(landscape, path=path, path_axes=path_axes(path, n),
                   path_grid=values["path"].reshape(n, n, -1), steps=tuple(job.steps))
