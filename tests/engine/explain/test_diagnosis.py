"""The whole-run diagnosis (engine.explain.diagnosis): a zoo of real runs on the embedded digits,
each with the cause it must name and the causes it must not, and its rules on made-up runs."""

from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from engine import cnn, ffnn
from engine.cnn.training import health_series as cnn_health_series
from engine.data.mnist import embedded_split
from engine.explain.diagnosis import (
    Cause,
    Diagnosis,
    RunRecord,
    diagnose_run,
    loss_trend,
    run_record,
)
from engine.explain.health import HealthSeries, bin_edges, fixed_batch
from engine.ffnn.training import health_series as ffnn_health_series
from ui.views.health import HEALTH_PRESETS

A, FF = ffnn.Architecture, ffnn.TrainingConfig
C = Cause
LR_BOTH = {C.LR_TOO_HIGH, C.LR_TOO_LOW}


@cache
def ffnn_diagnosis(config: ffnn.TrainingConfig) -> Diagnosis:
    """Train `config` on the embedded digits with layer health, then diagnose the whole run as
    the room does."""
    split = embedded_split()
    *_, last = ffnn.training_run(config, split, health_batch=fixed_batch(split))
    history = last.history
    series = ffnn_health_series(history.snapshot_steps, history.snapshots, config.arch)
    names = [f"Layer {i + 1}" for i in range(config.arch.n_layers)]
    return diagnose_run(run_record(
        history, series, names, config.to_metadata(), diverged=last.status == "diverged",
        untrained_loss=ffnn.uniform_guess_loss(config.loss)))


@cache
def cnn_diagnosis(config: cnn.TrainingConfig) -> Diagnosis:
    split = embedded_split()
    *_, last = cnn.training_run(config, split, health_batch=fixed_batch(split))
    history = last.history
    series = cnn_health_series(history.snapshot_steps, history.snapshots, config.spec)
    names = [f"Conv{i + 1}" for i in range(config.spec.blocks)] + ["Dense (output)"]
    return diagnose_run(run_record(history, series, names, config.to_metadata(),
                                   diverged=last.status == "diverged", unit="filters"))


HEALTHY = set()
ZOO = {  # name: (how to run it, the causes it must name, the causes it must not name)
    "feed-forward room defaults": (lambda: ffnn_diagnosis(FF()), HEALTHY, set(Cause)),
    "healthy preset": (lambda: ffnn_diagnosis(HEALTH_PRESETS["healthy"]), HEALTHY, set(Cause)),
    "batch norm rescues it": (lambda: ffnn_diagnosis(HEALTH_PRESETS["batch norm rescues it"]),
                              HEALTHY, set(Cause)),
    "small tanh net, Xavier": (lambda: ffnn_diagnosis(FF(A((64, 64), "tanh", "xavier"),
                                                         epochs=3)), HEALTHY, set(Cause)),
    "batch size 1": (lambda: ffnn_diagnosis(FF(A((64,)), batch_size=1, epochs=1)), HEALTHY,
                     set(Cause)),
    "zero initialisation, sigmoid": (
        lambda: ffnn_diagnosis(FF(A((64,) * 8, "sigmoid", "zeros"), epochs=3)),
        {C.IDENTICAL}, {C.SATURATED, C.VANISHING, C.UNDERFITTING, *LR_BOTH}),
    "zero initialisation, ReLU": (
        lambda: ffnn_diagnosis(FF(A((64, 64), "relu", "zeros"), epochs=2)),
        {C.DEAD}, {C.VANISHING, C.SATURATED, C.UNDERFITTING, *LR_BOTH}),
    "vanishing gradients preset": (lambda: ffnn_diagnosis(HEALTH_PRESETS["vanishing gradients"]),
                                   {C.VANISHING}, {C.IDENTICAL, C.DIVERGED, C.LR_TOO_HIGH}),
    "dead ReLUs preset": (lambda: ffnn_diagnosis(HEALTH_PRESETS["dead ReLUs"]), {C.DEAD},
                          {C.IDENTICAL, C.VANISHING, C.SATURATED}),
    "learning rate 10": (lambda: ffnn_diagnosis(FF(learning_rate=10.0, epochs=2)),
                         {C.DIVERGED}, set(Cause) - {C.DIVERGED}),
    "weights 10x He": (lambda: ffnn_diagnosis(FF(A((64,) * 4, "relu", "large"), epochs=2)),
                       {C.DIVERGED}, set(Cause) - {C.DIVERGED}),
    "SGD at 1e-4": (lambda: ffnn_diagnosis(FF(A((64,)), optimizer="sgd", learning_rate=1e-4,
                                               epochs=3)),
                    {C.LR_TOO_LOW}, {C.VANISHING, C.LR_TOO_HIGH, C.UNDERFITTING}),
    "Adam at 1e-6": (lambda: ffnn_diagnosis(FF(A((64,)), learning_rate=1e-6, epochs=3)),
                     {C.LR_TOO_LOW}, {C.VANISHING, C.LR_TOO_HIGH, C.DEAD}),
    "two hidden units": (lambda: ffnn_diagnosis(FF(A((2,)), epochs=3)), {C.UNDERFITTING},
                         {C.OVERFITTING, C.LR_TOO_HIGH, C.DIVERGED}),
    "overfitting preset (512 units, 200 digits)": (
        lambda: ffnn_diagnosis(HEALTH_PRESETS["overfitting"]),
        {C.OVERFITTING}, {C.UNDERFITTING, C.LR_TOO_LOW, C.VANISHING, C.DEAD}),
    "a smaller net on 500 digits": (
        lambda: ffnn_diagnosis(FF(A((128,)), batch_size=32, epochs=30, train_digits=500)),
        {C.OVERFITTING}, {C.UNDERFITTING, C.LR_TOO_LOW, C.VANISHING}),
    "CNN room defaults (cosine decay)": (lambda: cnn_diagnosis(cnn.TrainingConfig()), HEALTHY,
                                         set(Cause)),
    "CNN at learning rate 0.5": (lambda: cnn_diagnosis(cnn.TrainingConfig(learning_rate=0.5,
                                                                          epochs=1)),
                                 {C.LR_TOO_HIGH, C.DEAD}, {C.IDENTICAL, C.OVERFITTING}),
    "CNN at 1e-6, no decay": (
        lambda: cnn_diagnosis(cnn.TrainingConfig(learning_rate=1e-6, epochs=1,
                                                 cosine_decay=False)),
        {C.LR_TOO_LOW}, {C.VANISHING, C.LR_TOO_HIGH, C.DEAD}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ZOO))
def test_the_zoo_names_each_runs_cause_and_nothing_it_must_not(name):
    run, must, must_not = ZOO[name]
    diagnosis = run()
    named = {finding.cause for finding in diagnosis.findings}
    sentences = [finding.problem for finding in diagnosis.findings]
    assert must <= named, (must - named, sentences)
    assert not named & must_not, (named & must_not, sentences)
    if must == HEALTHY:
        assert diagnosis.healthy and not any(diagnosis.verdicts()), sentences
    if C.DIVERGED in named:
        assert len(diagnosis.findings) == 1  # judged on the blow-up alone


# --- the rules, on made-up runs ------------------------------------------------------------------

def made_up(losses, *, layers: int = 3, evaluations: int = 6, **fields) -> RunRecord:
    """A healthy-looking run of `layers` weight layers with these losses (T,) and `fields`
    changed: ReLU, nothing dead, gradients of one size, steps a thousandth of the weights."""
    hidden = layers - 1
    steps = np.linspace(len(losses) / evaluations, len(losses), evaluations).astype(int)
    health = HealthSeries(steps, np.zeros((evaluations, hidden, 40), int), bin_edges("relu"),
                          np.full((evaluations, hidden), 0.1), np.full((evaluations, hidden),
                                                                       np.nan),
                          np.zeros((evaluations, hidden)), np.ones((evaluations, layers)),
                          np.full((evaluations, layers), -3.0))
    health = replace(health, **{k: v for k, v in fields.items() if hasattr(health, k)})
    record = RunRecord(np.asarray(losses, float), steps, np.full(evaluations, 0.97),
                       np.full(evaluations, 0.95), health,
                       tuple(f"Layer {i + 1}" for i in range(layers)))
    return replace(record, **{k: v for k, v in fields.items() if hasattr(record, k)})


FALLING = np.geomspace(2.3, 0.1, 300)


def causes(record: RunRecord) -> set[Cause]:
    return {finding.cause for finding in diagnose_run(record).findings}


def test_a_made_up_healthy_run_has_no_finding():
    assert causes(made_up(FALLING)) == set()


def test_a_loss_that_rose_again_is_a_learning_rate_too_high():
    rising = np.concatenate([np.geomspace(2.3, 0.2, 150), np.linspace(0.2, 1.0, 150)])
    (finding,) = diagnose_run(made_up(rising)).findings
    assert finding.cause == C.LR_TOO_HIGH and "rose again, from 0.2" in finding.problem
    assert finding.chart == "loss" and finding.layers == (0, 1, 2)


def test_tiny_steps_at_the_end_of_a_cosine_decay_are_not_a_problem():
    """The first half of a decaying run is read: steps of 10^-3 there, 10^-6 at the end."""
    decayed = np.concatenate([np.full((3, 3), -3.0), np.full((3, 3), -6.0)])
    flat = np.linspace(2.3, 2.1, 300)  # barely falling: the step size is what decides
    assert C.LR_TOO_LOW not in causes(made_up(flat, update_ratios=decayed, decaying=True))
    assert C.LR_TOO_LOW in causes(made_up(flat, update_ratios=decayed, decaying=False))


def test_large_steps_alone_are_not_a_learning_rate_too_high():
    """Batch norm's first layer: tiny weights take steps large beside them, and learn."""
    big_first = np.tile([-1.0, -3.0, -3.0], (6, 1))
    assert causes(made_up(FALLING, update_ratios=big_first)) == set()


def test_twins_silence_the_symptoms_they_cause():
    twins = np.ones((6, 2))
    vanishing = np.tile([1e-5, 1e-3, 1.0], (6, 1))
    flat = np.full(300, 2.3)
    record = made_up(flat, identical=twins, grad_norms=vanishing,
                     train_accuracy=np.full(6, 0.1), val_accuracy=np.full(6, 0.1))
    assert causes(record) == {C.IDENTICAL}
    assert causes(replace(record, health=replace(record.health, identical=np.zeros((6, 2))))) >= {
        C.VANISHING}


def test_gradients_of_a_perfect_fit_are_not_vanishing():
    """Once the loss is ~0 every gradient is ~0: those evaluations say nothing of the flow."""
    norms = np.array([[1.0, 1.0, 1.0]] * 3 + [[0.0, 1e-9, 1e-7]] * 3)
    assert C.VANISHING not in causes(made_up(FALLING, grad_norms=norms))


def test_a_diverged_run_is_judged_on_its_blow_up_alone():
    losses = np.array([2.4, 2.1, 1.8, np.nan])
    diagnosis = diagnose_run(made_up(losses, diverged=True, dead=np.full((6, 2), 0.9)))
    (finding,) = diagnosis.findings
    assert finding.cause == C.DIVERGED
    assert "at step 4, from 1.8 to NaN" in finding.problem
    climbed = made_up(np.array([2.4, 3e5, 4e5, 6e5]), diverged=True)
    assert "at step 2, from 2.4 to 3e+05, and was 6e+05 when the run was stopped at step 4" in (
        diagnose_run(climbed).findings[0].problem)
    assert all(verdict == (C.DIVERGED,) for verdict in diagnosis.verdicts())
    assert diagnosis.named_on("loss") == {0, 1, 2} and not diagnosis.named_on("gradients")


def test_vanishing_gradients_name_the_layers_to_highlight_on_the_gradient_chart():
    vanishing = np.tile([1e-5, 1e-3, 1.0], (6, 1))
    diagnosis = diagnose_run(made_up(FALLING, grad_norms=vanishing))
    assert [f.cause for f in diagnosis.findings] == [C.VANISHING]
    assert diagnosis.named_on("gradients") == {0, 1} and not diagnosis.named_on("activations")
    assert diagnosis.verdicts() == [(C.VANISHING,), (C.VANISHING,), ()]


def test_overfitting_says_where_the_curves_parted_and_where_validation_peaked():
    train = np.array([0.8, 0.9, 0.95, 0.99, 1.0, 1.0])
    val = np.array([0.8, 0.86, 0.88, 0.87, 0.85, 0.84])
    (finding,) = diagnose_run(made_up(FALLING, train_accuracy=train,
                                      val_accuracy=val)).findings
    assert finding.cause == C.OVERFITTING and finding.chart == "accuracy"
    assert finding.steps == (150,)  # to mark on the chart
    assert "parted at step 150" in finding.problem and "peaked at 88.0% at step 150" in (
        finding.problem)


def test_underfitting_says_whether_the_loss_was_still_falling():
    still = np.geomspace(2.3, 0.9, 300)
    level = np.concatenate([np.geomspace(2.3, 1.2, 150), np.full(150, 1.2)])
    for losses, words in ((still, "still falling"), (level, "levelled off")):
        (finding,) = diagnose_run(made_up(losses, train_accuracy=np.full(6, 0.6),
                                          val_accuracy=np.full(6, 0.58))).findings
        assert finding.cause == C.UNDERFITTING and words in finding.problem


def test_the_loss_trend_needs_enough_finite_steps():
    assert loss_trend(np.linspace(2, 1, 10)) is None
    assert loss_trend(np.array([*np.linspace(2, 1, 30), np.inf])) is None
    losses = np.linspace(2.0, 1.0, 100)
    trend = loss_trend(losses)
    assert trend.start == pytest.approx(losses[:10].mean())  # ten stretches of ten steps
    assert trend.end == pytest.approx(losses[-10:].mean()) and trend.best_step == 100


def test_units_that_died_during_training_mark_the_step_they_passed_half():
    dying = np.array([[0.1], [0.2], [0.4], [0.6], [0.8], [0.9]]) * np.ones((6, 2))
    diagnosis = diagnose_run(made_up(FALLING, dead=dying))
    assert {f.cause for f in diagnosis.findings} == {C.DEAD}
    assert diagnosis.steps_on("activations") == {200}  # the fourth evaluation, 0.6 > half
    assert "died during training: 10% never fired at step 50" in diagnosis.findings[0].problem


def test_every_finding_is_a_sentence_with_advice_and_a_chart():
    records = [made_up(np.concatenate([np.geomspace(2.3, 0.2, 150), np.linspace(0.2, 1, 150)])),
               made_up(np.full(300, 2.3), identical=np.ones((6, 2))),
               made_up(FALLING, dead=np.full((6, 2), 0.9))]
    for record in records:
        for finding in diagnose_run(record).findings:
            assert finding.problem.endswith(".") and finding.advice.endswith(".")
            assert finding.chart in {"loss", "accuracy", "activations", "gradients", "updates"}
