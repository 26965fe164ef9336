"""Layer health: per-layer statistics of a network at an evaluation, and what they say in words.

From one forward and backward pass on a fixed batch (the family computes it on its own backend:
the tape of our engine or one jitted `jax.grad`), `layer_health` measures, per layer, the
distribution of the activations (a histogram on fixed bins, so evaluations line up as a
heatmap), the units that never fire (ReLU family) or the activations stuck in a flat tail
(tanh, sigmoid), and the gradient and weight norms. `update_ratios` adds log10(||dW|| / ||W||),
the size of a step against the weights it changes; `diagnose` turns the latest numbers into one
sentence per problem with what usually helps (Karpathy's "makemore" lectures' checks);
`health_series` lines a run's evaluations up as arrays to chart. Both model families use it.
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
MOSTLY = 0.5  # a layer with more than this fraction dead or saturated gets a sentence
VANISHING = 1e-2  # first layer's gradient norm / last layer's, below this: vanishing
EXPLODING = 1e2
UPDATE_RANGE = (-4.0, -2.0)  # log10 update ratio outside this: steps too small or too large


@dataclass(frozen=True)
class LayerHealth:
    """One evaluation's statistics of a net with L weight layers, the first H = L - 1 hidden.

    histograms: (H, BINS) int, each hidden layer's activations counted in the bins `edges`
    (BINS + 1,). dead: (H,) fraction of units that never fire on the batch (NaN where the
    activation cannot die). saturated: (H,) fraction of activations in a flat tail (NaN where
    it has none). grad_norms, weight_norms: (L,) Frobenius norms of each layer's weight
    gradient and weights. loss: the batch's loss.
    """

    histograms: np.ndarray
    edges: np.ndarray
    dead: np.ndarray
    saturated: np.ndarray
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
    saturated: (E, H). grad_norms: (E, L). update_ratios: (E, L), log10 of the average step
    since the previous evaluation over the weights' size (NaN at the first).
    """

    steps: np.ndarray
    histograms: np.ndarray
    edges: np.ndarray
    dead: np.ndarray
    saturated: np.ndarray
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
                        np.stack([r.grad_norms for r in records]), np.stack(ratios))


@dataclass(frozen=True)
class Finding:
    """One sentence of the diagnosis: what is happening, what usually helps, and the chart
    ("activations", "gradients", "updates" or "loss") that shows it."""

    problem: str
    advice: str
    chart: str


def numbered_layers(n_layers: int) -> list[str]:
    """"Layer 1", ..., "Layer n": how a sentence names the layers unless told otherwise."""
    return [f"Layer {i + 1}" for i in range(n_layers)]


def layer_findings(health: LayerHealth, names: Sequence[str], unit: str = "units"
                   ) -> list[Finding]:
    """Sentences for the hidden layers (names: theirs, H or more) that are mostly dead or mostly
    saturated. unit: what a layer's units are called ("filters" in a conv layer)."""
    findings = []
    for name, dead, saturated in zip(names, health.dead, health.saturated, strict=False):
        if dead > MOSTLY:
            findings.append(Finding(
                f"{name}: {dead:.0%} of its {unit} never fire on the evaluation batch "
                "(dead ReLUs); they pass no gradient back, so they never learn again.",
                "A smaller learning rate, He initialisation or leaky ReLU usually helps.",
                "activations"))
        if saturated > MOSTLY:
            findings.append(Finding(
                f"{name}: {saturated:.0%} of its activations sit in a flat tail "
                "(saturated), where the slope and so the gradient is almost zero.",
                "Xavier initialisation, smaller weights or ReLU usually helps.", "activations"))
    return findings


def how_many_times(factor: float) -> str:
    """2345.6 -> "2,346"; 3.1e7 -> "3e+07": a factor in words a reader can take in."""
    return f"{factor:,.0f}" if factor < 1e5 else f"{factor:.0e}"


def gradient_findings(grad_norms: np.ndarray) -> list[Finding]:
    """A sentence when the gradient norm (L,) shrinks or grows by orders of magnitude from
    the last layer back to the first."""
    if len(grad_norms) < 2 or not np.all(np.isfinite(grad_norms)) or grad_norms[-1] <= 0:
        return []
    ratio = grad_norms[0] / grad_norms[-1]
    if ratio < VANISHING:
        return [Finding(
            f"Vanishing gradients: the first layer's gradient is "
            f"{how_many_times(1 / max(ratio, 1e-30))} "
            "times smaller than the last layer's, so the layers near the input barely learn.",
            "ReLU with He initialisation, fewer layers or batch normalisation usually helps.",
            "gradients")]
    if ratio > EXPLODING:
        return [Finding(
            f"Exploding gradients: the first layer's gradient is {how_many_times(ratio)} "
            "times larger than the last layer's.",
            "A smaller initialisation (He or Xavier) or a smaller learning rate usually helps.",
            "gradients")]
    return []


def update_findings(ratios: np.ndarray, names: Sequence[str], decaying: bool = False
                    ) -> list[Finding]:
    """A sentence when a layer's log10 update ratio (L,) leaves UPDATE_RANGE; names: the L
    layers'. decaying: the run's step size is decayed toward 0 on purpose (cosine decay), so
    small steps late in the run are what was asked for."""
    finite = np.where(np.isfinite(ratios), ratios, np.nan)
    low, high = UPDATE_RANGE
    findings = []
    if np.nanmax(finite, initial=-np.inf) > high:
        layer = int(np.nanargmax(finite))
        findings.append(Finding(
            f"{names[layer]}'s steps change its weights by 10^{finite[layer]:.1f} of their "
            "size each step, above 1e-2: the learning rate is probably too large.",
            "Try a learning rate 3 to 10 times smaller.", "updates"))
    if np.nanmin(finite, initial=np.inf) < low and decaying:
        layer = int(np.nanargmin(finite))
        findings.append(Finding(
            f"{names[layer]}'s steps change its weights by only 10^{finite[layer]:.1f} of "
            "their size each step, below 1e-4: the learning-rate decay is taking the step size "
            "down to 0.",
            "Near the end of the run that is intended; earlier on, a larger learning rate "
            "usually helps.", "updates"))
    elif np.nanmin(finite, initial=np.inf) < low:
        layer = int(np.nanargmin(finite))
        findings.append(Finding(
            f"{names[layer]}'s steps change its weights by only 10^{finite[layer]:.1f} of "
            "their size each step, below 1e-4: it learns very slowly.",
            "A larger learning rate usually helps (or a better initialisation, if its gradient "
            "vanished).", "updates"))
    return findings


def diagnose(health: LayerHealth, ratios: np.ndarray | None, diverged: bool,
             names: Sequence[str] | None = None, unit: str = "units", decaying: bool = False
             ) -> list[Finding]:
    """Every problem the latest evaluation shows, one Finding each (empty: nothing to say).

    ratios: the latest log10 update ratios (L,), None before there are two evaluations.
    diverged: the run stopped because its loss blew up. names: the L weight layers' names in
    the sentences ("Layer 1", ... unless given); unit: what a layer's units are called.
    decaying: the step size is decayed toward 0 on purpose (see `update_findings`).
    """
    names = numbered_layers(len(health.grad_norms)) if names is None else names
    findings = []
    if diverged:
        findings.append(Finding(
            "The loss diverged: the steps overshoot and the weights blow up.",
            "Lower the learning rate tenfold.", "loss"))
    findings += layer_findings(health, names, unit) + gradient_findings(health.grad_norms)
    if ratios is not None and len(ratios):
        findings += update_findings(ratios, names, decaying)
    return findings


def layer_status(health: LayerHealth, ratios: np.ndarray | None, decaying: bool = False
                 ) -> list[str]:
    """Per weight layer (L,), "bad", "watch" or "ok" at the latest evaluation: bad when mostly
    dead or saturated, its gradient VANISHING x the last layer's or smaller (or EXPLODING x
    larger), or its update ratio outside UPDATE_RANGE; watch at a fifth of a layer dead or
    saturated, or a gradient a tenth of the last's (or ten times), or, when the step size is
    decayed on purpose (decaying), an update ratio below UPDATE_RANGE."""
    unhealthy = np.append(np.fmax(health.dead, health.saturated), np.nan)  # the output: neither
    relative = health.grad_norms / max(float(health.grad_norms[-1]), 1e-30)
    low, high = UPDATE_RANGE
    steps = np.full(len(relative), np.nan) if ratios is None else np.asarray(ratios)
    statuses = []
    for fraction, gradient, step in zip(unhealthy, relative, steps, strict=True):
        too_small = np.isfinite(step) and step < low
        if (fraction > MOSTLY or not VANISHING <= gradient <= EXPLODING
                or (np.isfinite(step) and step > high) or (too_small and not decaying)):
            statuses.append("bad")
        elif fraction > 0.2 or not 0.1 <= gradient <= 10 or too_small:
            statuses.append("watch")
        else:
            statuses.append("ok")
    return statuses
