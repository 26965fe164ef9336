"""Layer health: per-layer statistics of a network at an evaluation, and what they say in words.

From one forward and backward pass on a fixed batch (the family computes it on its own backend:
the tape of our engine or one jitted `jax.grad`), `layer_health` measures, per layer, the
distribution of the activations (a histogram on fixed bins, so evaluations line up as a
heatmap), the units that never fire (ReLU family) or the activations stuck in a flat tail
(tanh, sigmoid), the units that compute the same as another (a symmetry never broken), and the
gradient and weight norms. `update_ratios` adds log10(||dW|| / ||W||), the size of a step
against the weights it changes; `health_series` lines a run's evaluations up as arrays to chart
(Karpathy's "makemore" lectures' checks). Both model families use it; `engine.explain.diagnosis`
reads a whole run's series and says what they mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data.mnist import as_float

BINS = 40
# Where each activation's values live; values outside land in the first or last bin.
VALUE_RANGES = {"relu": (0.0, 4.0), "leaky_relu": (-0.5, 4.0), "gelu": (-0.5, 4.0),
                "tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
SATURATING = ("tanh", "sigmoid")
TANH_SATURATED = 0.97  # |tanh| above this: its slope is below 0.06
SIGMOID_TAIL = 0.03  # sigmoid below this or above 1 - this: its slope is below 0.03
UPDATE_RANGE = (-4.0, -2.0)  # log10 update ratios usually inside this band (about -3)
TWIN_DIGITS = 5  # units whose activations agree to this many significant digits are twins
TWIN_ROWS = 2048  # rows (digits, or digits x positions) compared, at most


@dataclass(frozen=True)
class LayerHealth:
    """One evaluation's statistics of a net with L weight layers, the first H = L - 1 hidden.

    histograms: (H, BINS) int, each hidden layer's activations counted in the bins `edges`
    (BINS + 1,). dead: (H,) fraction of units that never fire on the batch (NaN where the
    activation cannot die). saturated: (H,) fraction of activations in a flat tail (NaN where
    it has none). identical: (H,) fraction of units that compute the same as another unit
    (`identical_fraction`). grad_norms, weight_norms: (L,) Frobenius norms of each layer's
    weight gradient and weights. loss: the batch's loss.
    """

    histograms: np.ndarray
    edges: np.ndarray
    dead: np.ndarray
    saturated: np.ndarray
    identical: np.ndarray
    grad_norms: np.ndarray
    weight_norms: np.ndarray
    loss: float


def bin_edges(activation: str) -> np.ndarray:
    """The fixed histogram edges (BINS + 1,) for this activation's values."""
    low, high = VALUE_RANGES[activation]
    return np.linspace(low, high, BINS + 1)


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts (len(edges) - 1,) of values (any shape); those outside the edges are counted in
    the first or last bin, so the counts add up to values.size."""
    inside = np.clip(np.ravel(values), edges[0], edges[-1])
    return np.histogram(inside, edges)[0]


def dead_fraction(values: np.ndarray) -> float:
    """Fraction of units (columns of values (batch, units)) never positive on the batch: a
    ReLU unit like that passes no gradient back and so never learns again."""
    return float(np.mean(np.all(values <= 0, axis=0)))


def saturated_fraction(values: np.ndarray, activation: str) -> float:
    """Fraction of the activations (batch, units) in a flat tail of tanh or sigmoid."""
    if activation == "tanh":
        return float(np.mean(np.abs(values) > TANH_SATURATED))
    if activation == "sigmoid":
        return float(np.mean((values < SIGMOID_TAIL) | (values > 1 - SIGMOID_TAIL)))
    raise ValueError(f"{activation!r} does not saturate; only {list(SATURATING)} do")


def significant(values: np.ndarray, digits: int) -> np.ndarray:
    """values rounded to `digits` significant digits each (0 stays 0)."""
    magnitude = np.abs(values)
    exponent = np.floor(np.log10(magnitude, where=magnitude > 0,
                                 out=np.zeros_like(magnitude)))
    return np.round(values / 10**exponent, digits - 1) * 10**exponent


def identical_fraction(values: np.ndarray) -> float:
    """Fraction of the units (columns of values (batch, units)) whose activations on the batch
    equal another unit's (to TWIN_DIGITS significant digits): twins get the same gradient and
    stay twins, so a layer of them is one unit. That happens when training never broke the
    symmetry of the initial weights (all zero, or all the same). Units that never fire are
    left out: they are dead, not twins.

    Each unit is compared by two numbers (its sum and a fixed weighted sum) over at most
    TWIN_ROWS evenly spaced rows: copies agree on any of them, and a conv layer's 50,000
    positions cost no more than a dense layer's batch.
    """
    rows = values[::max(1, len(values) // TWIN_ROWS)]
    live = rows[:, np.any(rows != 0, axis=0)]
    if live.shape[1] < 2:
        return 0.0
    weights = np.cos(np.arange(len(live)) * 0.6180339887)  # fixed, not symmetric in the rows
    signature = np.stack([live.sum(axis=0), weights @ live]).astype(np.float64)
    _, inverse, counts = np.unique(significant(signature, TWIN_DIGITS).T, axis=0,
                                   return_inverse=True, return_counts=True)
    return float(np.sum(counts[inverse.ravel()] > 1) / values.shape[1])


def layer_health(hidden: Sequence[np.ndarray], weights: Sequence[np.ndarray],
                 weight_grads: Sequence[np.ndarray], activation: str, loss: float
                 ) -> LayerHealth:
    """The LayerHealth of one pass: hidden, the H hidden layers' activations (batch, h_i);
    weights and weight_grads, the L = H + 1 weight matrices and their gradients."""
    if activation not in VALUE_RANGES:
        raise ValueError(f"unknown activation {activation!r}; choose one of "
                         f"{list(VALUE_RANGES)}")
    if len(weights) != len(weight_grads) or len(weights) != len(hidden) + 1:
        raise ValueError(f"{len(hidden)} hidden layers need {len(hidden) + 1} weight matrices "
                         f"and as many gradients, got {len(weights)} and {len(weight_grads)}")
    edges = bin_edges(activation)
    saturates = activation in SATURATING
    return LayerHealth(
        histograms=np.array([histogram(h, edges) for h in hidden], np.int64).reshape(-1, BINS),
        edges=edges,
        dead=np.array([np.nan if saturates else dead_fraction(h) for h in hidden]),
        saturated=np.array([saturated_fraction(h, activation) if saturates else np.nan
                            for h in hidden]),
        identical=np.array([identical_fraction(np.asarray(h)) for h in hidden]),
        grad_norms=np.array([np.linalg.norm(g) for g in weight_grads]),
        weight_norms=np.array([np.linalg.norm(w) for w in weights]),
        loss=float(loss))


def update_ratios(before: Sequence[np.ndarray], after: Sequence[np.ndarray], steps: int
                  ) -> np.ndarray:
    """log10(||dW|| / ||W||) per layer (L,): dW, the average step from the weights `before` to
    `after` (each a list of L matrices) over `steps` steps; W, the weights after.

    Steps that partly cancel (noisy gradients) make the average smaller than one step. -inf
    for a layer that did not move; NaN for one whose weights are all zero.
    """
    if steps < 1:
        raise ValueError(f"an update needs at least one step, got {steps}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.array([np.log10(np.linalg.norm(a - b) / steps / np.linalg.norm(a))
                         for b, a in zip(before, after, strict=True)])


def evenly_spaced(n: int, size: int) -> np.ndarray:
    """Indices (<= size,) of `size` rows evenly spaced over n, from the first."""
    return np.arange(0, n, max(1, n // size))[:size]


def fixed_batch(split: Any, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A batch fixed for a run, to measure its health on: x (size, 28, 28) float32, y (size,).

    Evenly spaced training digits, so every class is in it.
    """
    keep = evenly_spaced(len(split.x_train), size)
    return as_float(split.x_train[keep]), split.y_train[keep]


@dataclass(frozen=True)
class HealthSeries:
    """A run's layer health over its evaluations, E of them, as arrays to chart.

    steps: (E,). histograms: (E, H, BINS) counts on the bins `edges` (BINS + 1,). dead,
    saturated, identical: (E, H). grad_norms: (E, L). update_ratios: (E, L), log10 of the
    average step since the previous evaluation over the weights' size (NaN at the first).
    """

    steps: np.ndarray
    histograms: np.ndarray
    edges: np.ndarray
    dead: np.ndarray
    saturated: np.ndarray
    identical: np.ndarray
    grad_norms: np.ndarray
    update_ratios: np.ndarray


def health_series(steps: Sequence[int], snapshots: Sequence[Any],
                  weights_of: Callable[[Any], list[np.ndarray]]) -> HealthSeries | None:
    """The health recorded in a run's snapshots (taken at `steps`; each with a `health`
    LayerHealth or None and its `flat` parameters), None if none has any. weights_of: a
    snapshot -> its L weight arrays, for the update ratios."""
    pairs = [(step, snap) for step, snap in zip(steps, snapshots, strict=True)
             if snap.health is not None and snap.flat is not None]
    if not pairs:
        return None
    records = [snap.health for _, snap in pairs]
    weights = [weights_of(snap) for _, snap in pairs]
    ratios = [np.full(len(weights[0]), np.nan)] + [
        update_ratios(weights[e - 1], weights[e], max(1, pairs[e][0] - pairs[e - 1][0]))
        for e in range(1, len(pairs))]
    return HealthSeries(np.array([step for step, _ in pairs]),
                        np.stack([r.histograms for r in records]), records[0].edges,
                        np.stack([r.dead for r in records]),
                        np.stack([r.saturated for r in records]),
                        np.stack([r.identical for r in records]),
                        np.stack([r.grad_norms for r in records]), np.stack(ratios))
