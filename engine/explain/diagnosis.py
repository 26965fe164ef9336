"""A diagnosis of a whole training run: what went wrong, how sure, and the evidence.

Layer health's numbers (`engine.explain.health`) are exact; what a learner acts on is the
sentence. `diagnose_run` reads a run's history (every step's loss, the training and validation
accuracy at each evaluation, the layers' health series, the schedule) and returns findings
ranked by how sure they are, each naming its cause, the layers and steps it rests on, and the
chart that shows it. One judgement gives the sentences, the banner and each layer's verdict
(`Diagnosis.verdicts`), so they cannot disagree.

Causes are told apart by evidence that only they leave, not by a symptom they share:

- a run that diverged is judged on its blow-up alone (the layers' numbers before it are not
  the cause);
- units that are exact twins (all-equal initial weights: zeros or a constant) also have tiny
  gradients and may sit anywhere on their curve, but the cause is the symmetry, so that finding
  silences vanishing gradients, saturation, the learning rate and underfitting;
- a step size is judged by the loss (rising again, or barely falling) with the update ratios as
  support, never by an update ratio alone: a layer with tiny weights (batch norm's first layer)
  takes steps large beside them and learns well, and a cosine decay takes the steps to 0 on
  purpose (only the first half of such a run is read);
- overfitting needs the training accuracy (on fixed training digits) far ahead of validation.

A healthy run gets no finding at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from engine.explain.health import HealthSeries

MOSTLY = 0.5  # more than this fraction of a layer dead or saturated: a problem
TWINS = 0.9  # at least this fraction of a layer's units are copies of another: a problem
VANISHING = 1e-2  # a layer's gradient / the last layer's, median over the run, below: vanishing
EXPLODING = 1e2
ALIVE = 1e-3  # a last-layer gradient below this fraction of its largest: the loss is ~0
RISEN = 1.3  # the loss ends this many times above its best: it rose again
BLOWN = 10.0  # a loss this many times the lowest before it: where a diverged run blew up
THROWN = 1.5  # the first stretch's loss this many times a blind guess's: the first steps overshot
BARELY = 0.8  # the loss ends above this fraction of where it began: it barely fell
BIG_STEP = -1.5  # log10 update ratio above this (3% of the weights a step): steps too large
SMALL_STEP = -3.5  # below this (0.03%), with a loss that barely fell: steps too small
OVERFIT_GAP = 0.10  # training accuracy this far (absolute) above validation: overfitting
PARTED_GAP = 0.05  # the curves parted where the gap reached this and stayed there
FITS = 0.75  # training accuracy below this at the end: underfitting (MNIST allows 92% linearly)
MIN_STEPS = 20  # fewer steps than this say nothing about the loss's trend
WINDOWS = 10  # the loss is read as the means of this many stretches of the run
FALLING = 0.9  # the last stretch below this times the one two before: still learning


class Cause(StrEnum):
    """What a finding blames."""

    DIVERGED = "diverged"
    IDENTICAL = "identical units"
    VANISHING = "vanishing gradients"
    EXPLODING = "exploding gradients"
    DEAD = "dead units"
    SATURATED = "saturated units"
    LR_TOO_HIGH = "learning rate too high"
    LR_TOO_LOW = "learning rate too low"
    OVERFITTING = "overfitting"
    UNDERFITTING = "underfitting"


@dataclass(frozen=True)
class Finding:
    """One problem: its cause, how sure (0 to 1), the sentence with its evidence, what usually
    helps, the chart that shows it ("loss", "accuracy", "activations", "gradients" or
    "updates"), and the weight layers (indices) and steps it rests on."""

    cause: Cause
    confidence: float
    problem: str
    advice: str
    chart: str
    layers: tuple[int, ...] = ()
    steps: tuple[int, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    """What a diagnosis reads of a run.

    losses: (T,) every step's training loss (a diverged run's last one is the blow-up, maybe
    NaN). eval_steps: (E,); train_accuracy: (E,) on fixed training digits, or (0,) when not
    measured; val_accuracy: (E,). health: the layers' HealthSeries, None when not recorded.
    names: the L weight layers' names; unit: what a layer's units are called. diverged: the run
    stopped because its loss blew up. decaying: its step size is decayed to 0 on purpose.
    activation: the hidden layers'. untrained_loss: the loss of a blind guess (1/10 each).
    """

    losses: np.ndarray
    eval_steps: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    health: HealthSeries | None
    names: tuple[str, ...]
    unit: str = "units"
    diverged: bool = False
    decaying: bool = False
    activation: str = "relu"
    untrained_loss: float = float(np.log(10))


def run_record(history: Any, health: HealthSeries | None, names: Sequence[str],
               settings: Mapping[str, Any], *, diverged: bool, unit: str = "units",
               untrained_loss: float = float(np.log(10))) -> RunRecord:
    """The RunRecord of a run's `History` (engine.training.loop), its health series, its L
    weight layers' names and its training settings (metadata: cosine_decay, arch.activation)."""
    activation = settings.get("arch", {}).get("activation", "relu")
    return RunRecord(np.asarray(history.losses, float), np.asarray(history.eval_steps),
                     np.asarray(history.train_accuracy, float),
                     np.asarray(history.val_accuracy, float), health, tuple(names), unit,
                     diverged, bool(settings.get("cosine_decay")), activation, untrained_loss)


@dataclass(frozen=True)
class Diagnosis:
    """The findings, surest first, and the number of weight layers they judge."""

    findings: tuple[Finding, ...]
    n_layers: int

    @property
    def healthy(self) -> bool:
        return not self.findings

    def named_on(self, chart: str) -> set[int]:
        """The weight layers the findings shown on `chart` name (to highlight there)."""
        return {layer for f in self.findings if f.chart == chart for layer in f.layers}

    def steps_on(self, chart: str) -> set[int]:
        """The steps the findings shown on `chart` rest on (to mark there)."""
        return {step for f in self.findings if f.chart == chart for step in f.steps}

    def verdicts(self) -> list[tuple[Cause, ...]]:
        """Per weight layer (L,), the causes of the findings that name it (empty: healthy)."""
        return [tuple(f.cause for f in self.findings if layer in f.layers)
                for layer in range(self.n_layers)]


# ----------------------------------------------------------------------------- reading the loss

@dataclass(frozen=True)
class LossTrend:
    """The loss read as the means of WINDOWS stretches: the first, the best, the last, the step
    (1-based) at the end of the best stretch, the steps in all, and whether the last stretch
    was still clearly below the one two before it (still learning)."""

    start: float
    best: float
    end: float
    best_step: int
    steps: int
    still_falling: bool

    @property
    def risen(self) -> bool:
        """It ended well above its best, which came before the last stretches."""
        return self.end > RISEN * self.best and self.end - self.best > 0.05 and (
            self.best_step < 0.8 * self.steps)

    @property
    def barely_fell(self) -> bool:
        return self.end > BARELY * self.start


def loss_trend(losses: np.ndarray) -> LossTrend | None:
    """The LossTrend of finite losses (T,), None for fewer than MIN_STEPS."""
    if len(losses) < MIN_STEPS or not np.all(np.isfinite(losses)):
        return None
    stretches = np.array_split(losses, WINDOWS)
    means = np.array([s.mean() for s in stretches])
    ends = np.cumsum([len(s) for s in stretches])
    best = int(np.argmin(means))
    return LossTrend(float(means[0]), float(means[best]), float(means[-1]), int(ends[best]),
                     len(losses), bool(means[-1] < FALLING * means[-3]))


# ----------------------------------------------------------------------------- words

def listed(names: Sequence[str]) -> str:
    """["Layer 1"] -> "Layer 1"; two or more -> "Layer 1, Layer 2 and Layer 3"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def how_many_times(factor: float) -> str:
    """2345.6 -> "2,346"; 3.1e7 -> "3e+07": a factor in words a reader can take in."""
    return f"{factor:,.0f}" if factor < 1e5 else f"{factor:.0e}"


def singular(unit: str) -> str:
    return unit[:-1] if unit.endswith("s") else unit


def loss_value(value: float) -> str:
    return f"{value:.3g}" if np.isfinite(value) else ("NaN" if np.isnan(value) else "infinite")


# ----------------------------------------------------------------------------- the findings

def blowup_index(losses: np.ndarray) -> int:
    """Where the loss (T,) blew up: the first loss that is not finite or over BLOWN times the
    lowest before it; the last one if none is."""
    lowest = np.minimum.accumulate(np.where(np.isfinite(losses), losses, np.inf))
    over = ~np.isfinite(losses[1:]) | (losses[1:] > BLOWN * lowest[:-1])
    return int(np.argmax(over)) + 1 if over.any() else len(losses) - 1


def diverged_finding(run: RunRecord) -> Finding:
    """Where the loss blew up, from what, and where the run was stopped."""
    losses = run.losses
    if not len(losses):
        where = "before its first step was taken"
    elif len(losses) == 1:
        where = f"at its first step ({loss_value(losses[0])})"
    else:
        at = blowup_index(losses)
        where = (f"at step {at + 1}, from {loss_value(losses[at - 1])} to "
                 f"{loss_value(losses[at])}")
        if at < len(losses) - 1:
            where += (f", and was {loss_value(losses[-1])} when the run was stopped at step "
                      f"{len(losses)}")
    return Finding(Cause.DIVERGED, 1.0,
                   f"The loss blew up {where}: the steps overshoot and the weights run away.",
                   "Lower the learning rate tenfold.", "loss",
                   tuple(range(len(run.names))), (len(losses),))


def identical_finding(run: RunRecord) -> Finding | None:
    """Hidden layers whose units are mostly twins at the end of the run."""
    last = run.health.identical[-1]
    layers = tuple(int(i) for i in np.flatnonzero(last >= TWINS))
    if not layers:
        return None
    share = min(float(last[i]) for i in layers)
    one = singular(run.unit)
    return Finding(
        Cause.IDENTICAL, 0.95,
        f"{listed([run.names[i] for i in layers])}: {share:.0%} of the {run.unit} compute "
        f"exactly what another {one} computes. Copies get the same gradient and stay copies, "
        f"so each such layer works as one {one}: the initial weights were all equal and "
        "training never told them apart.",
        "Start from random weights (He or Xavier initialisation): weights that start equal "
        "(zeros, or one constant) stay equal.", "activations", layers,
        (int(run.health.steps[-1]),))


def gradient_ratios(health: HealthSeries) -> np.ndarray:
    """Each layer's gradient norm over the last layer's, median over the evaluations (L,).

    Only evaluations where the last layer still gets a gradient count (at least ALIVE of its
    largest): a net that fits its training digits perfectly has a loss, and so gradients, of
    almost 0, which says nothing about how they flow.
    """
    norms = np.where(np.isfinite(health.grad_norms), health.grad_norms, np.nan)
    last = norms[:, -1:]
    alive = last > ALIVE * np.nanmax(last, initial=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(alive & (last > 0), norms / last, np.nan)
    return np.nanmedian(ratios, axis=0) if np.isfinite(ratios).any() else np.full(
        norms.shape[1], np.nan)


def gradient_finding(run: RunRecord) -> Finding | None:
    """Vanishing or exploding: the gradient shrinks or grows by orders of magnitude from the
    last layer back to the first, over the whole run (the median of its evaluations)."""
    ratios = gradient_ratios(run.health)
    evaluations = len(run.health.steps)
    if not np.isfinite(ratios[0]) or VANISHING <= ratios[0] <= EXPLODING:
        return None
    vanishing = ratios[0] < VANISHING
    layers = tuple(int(i) for i in np.flatnonzero(
        ratios < VANISHING if vanishing else ratios > EXPLODING))
    factor = 1 / max(ratios[0], 1e-30) if vanishing else ratios[0]
    confidence = float(min(1.0, 0.8 + 0.1 * np.log10(factor / EXPLODING)))
    named = listed([run.names[i] for i in layers])
    if vanishing:
        return Finding(
            Cause.VANISHING, confidence,
            f"{run.names[0]}'s gradient was {how_many_times(factor)} times "
            f"smaller than the last layer's (the median of {evaluations} evaluations), so "
            f"{named} barely learn.",
            "ReLU with He initialisation, batch norm or fewer layers usually helps.",
            "gradients", layers)
    return Finding(
        Cause.EXPLODING, confidence,
        f"{run.names[0]}'s gradient was {how_many_times(factor)} times "
        f"larger than the last layer's (the median of {evaluations} evaluations).",
        "Smaller initial weights (He or Xavier) or batch norm usually helps.", "gradients",
        layers)


def dead_findings(run: RunRecord) -> list[Finding]:
    """Hidden layers mostly dead at the end: dead from the start, or died during training."""
    health, findings = run.health, []
    for i in np.flatnonzero(health.dead[-1] > MOSTLY):
        dead, steps = health.dead[:, i], health.steps
        crossed = int(steps[int(np.argmax(dead > MOSTLY))])  # the first evaluation past half
        if dead[0] > MOSTLY:
            story = (f"{dead[-1]:.0%} of its {run.unit} never fire on the evaluation digits, "
                     f"and most were dead already at the first evaluation (step {steps[0]})")
            advice = ("He initialisation or leaky ReLU usually helps; so does a smaller "
                      "learning rate if the first steps were large.")
        else:
            story = (f"its {run.unit} died during training: {dead[0]:.0%} never fired at step "
                     f"{steps[0]}, {dead[-1]:.0%} by step {steps[-1]} (past half at step "
                     f"{crossed})")
            advice = "A smaller learning rate or leaky ReLU usually helps."
        findings.append(Finding(
            Cause.DEAD, float(min(1.0, 0.5 + dead[-1] / 2)),
            f"{run.names[i]}: {story}. A dead ReLU passes no gradient back, so it never learns "
            "again.", advice, "activations", (int(i),), (crossed,)))
    return findings


def saturated_findings(run: RunRecord) -> list[Finding]:
    """Hidden layers whose activations sat in a flat tail through the second half of the run."""
    health, findings = run.health, []
    late = health.saturated[len(health.steps) // 2:]
    for i in np.flatnonzero(np.mean(late > MOSTLY, axis=0) >= 0.5):
        findings.append(Finding(
            Cause.SATURATED, float(0.4 + health.saturated[-1, i] / 2),
            f"{run.names[i]}: {health.saturated[-1, i]:.0%} of its activations sit in a flat "
            f"tail of {run.activation} (saturated) at the last evaluation, and most did "
            "through the second half of the run: there the slope, and so the gradient, is "
            "almost zero.", "Xavier initialisation, batch norm or ReLU usually helps.",
            "activations", (int(i),)))
    return findings


def typical_update(health: HealthSeries, decaying: bool) -> float:
    """The median log10 update ratio over every layer and evaluation (only the first half of a
    run whose step size decays to 0 on purpose); NaN when none is measured yet."""
    read = max(2, len(health.steps) // 2 + 1) if decaying else len(health.steps)
    ratios = health.update_ratios[:read]
    finite = ratios[np.isfinite(ratios)]
    return float(np.median(finite)) if len(finite) else float("nan")


def learning_rate_finding(run: RunRecord, trend: LossTrend | None) -> Finding | None:
    """Too high: the first steps threw the loss above a blind guess's, or it rose again, or it
    barely fell while the steps were huge. Too low: the loss barely fell while every step was
    tiny. The update ratios support, never decide."""
    if trend is None:
        return None
    update = typical_update(run.health, run.decaying) if run.health is not None else np.nan
    every = tuple(range(len(run.names)))
    thrown = trend.start > THROWN * run.untrained_loss
    if thrown or trend.risen or (trend.barely_fell and update > BIG_STEP):
        if thrown:
            what = (f"averaged {trend.start:.3g} over its first {trend.steps // WINDOWS} steps, "
                    f"above the {run.untrained_loss:.3g} of a blind guess")
        elif trend.risen:
            what = (f"rose again, from {trend.best:.3g} (around step {trend.best_step}) to "
                    f"{trend.end:.3g} at the end")
        else:
            what = (f"barely fell ({trend.start:.3g} to {trend.end:.3g}) while each step moved "
                    f"the weights by about 10^{update:.1f} of their size")
        return Finding(Cause.LR_TOO_HIGH, 0.6 if trend.barely_fell and not thrown else 0.8,
                       f"The training loss {what}: the steps overshoot.",
                       "Try a learning rate 3 to 10 times smaller.", "loss", every)
    if trend.barely_fell and update < SMALL_STEP:
        return Finding(Cause.LR_TOO_LOW, 0.7,
                       f"In {trend.steps} steps the training loss barely fell ({trend.start:.3g}"
                       f" to {trend.end:.3g}), and each step moved the weights by only about "
                       f"10^{update:.1f} of their size (about 10^-3 is usual).",
                       "Try a learning rate 3 to 10 times larger.", "updates", every)
    return None


def overfitting_finding(run: RunRecord) -> Finding | None:
    """Training accuracy far ahead of validation at the end, with the step where they parted
    (and the validation peak, if it fell since)."""
    if not len(run.train_accuracy) or not len(run.val_accuracy):
        return None
    gap = run.train_accuracy - run.val_accuracy
    if gap[-1] < OVERFIT_GAP or run.train_accuracy[-1] < FITS:
        return None
    apart = gap >= PARTED_GAP
    together = np.flatnonzero(~apart)  # the last evaluation the curves were still together
    parted = int(run.eval_steps[together[-1] + 1 if len(together) else 0])
    peak = int(np.argmax(run.val_accuracy))
    fell = run.val_accuracy[peak] - run.val_accuracy[-1]
    since = (f"; validation peaked at {run.val_accuracy[peak]:.1%} at step "
             f"{run.eval_steps[peak]} and fell since" if fell >= 0.02 else "")
    return Finding(
        Cause.OVERFITTING, float(min(1.0, 0.5 + gap[-1])),
        f"The net reads its own training digits right {run.train_accuracy[-1]:.1%} "
        f"of the time but new ones only {run.val_accuracy[-1]:.1%}; the two curves parted at "
        f"step {parted}{since}. It learned its training digits by heart rather than digits.",
        "More training digits, a smaller net, fewer epochs (stop where validation peaked) or "
        "dropout usually helps.", "accuracy", (), (parted,))


def fit_accuracy(run: RunRecord) -> float | None:
    """How well it reads its own training digits at the end (validation when not measured)."""
    accuracy = run.train_accuracy if len(run.train_accuracy) else run.val_accuracy
    return float(accuracy[-1]) if len(accuracy) else None


def underfitting_finding(run: RunRecord, trend: LossTrend | None) -> Finding | None:
    """It fits even its own training digits poorly (and nothing else found explains why)."""
    accuracy = fit_accuracy(run)
    if accuracy is None or accuracy >= FITS:
        return None
    still = trend is not None and trend.still_falling
    return Finding(
        Cause.UNDERFITTING, 0.5,
        f"The net reads even its own training digits right only {accuracy:.1%} "
        "of the time" + (", and its loss was still falling at the end." if still else
                         ", and its loss had levelled off."),
        "Train longer, or give the net more units or layers." if still else
        "A bigger net (more units or layers) or a larger learning rate usually helps.",
        "accuracy")


def diagnose_run(run: RunRecord) -> Diagnosis:
    """Every problem the run shows, surest first (empty: a healthy run)."""
    n_layers = len(run.names)
    if run.diverged:
        return Diagnosis((diverged_finding(run),), n_layers)
    trend = loss_trend(run.losses)
    findings: list[Finding] = []
    twins = identical_finding(run) if run.health is not None else None
    if twins is not None:
        findings.append(twins)
    if run.health is not None:
        findings += dead_findings(run)
        if twins is None:
            findings += [f for f in [gradient_finding(run)] if f] + saturated_findings(run)
    if twins is None:
        findings += [f for f in [learning_rate_finding(run, trend)] if f]
    findings += [f for f in [overfitting_finding(run)] if f]
    if not findings:
        findings += [f for f in [underfitting_finding(run, trend)] if f]
    return Diagnosis(tuple(sorted(findings, key=lambda f: -f.confidence)), n_layers)
