"""The optimiser race: engine.nn.optim's own updates, a hand-computed first step, divergence."""

import math

import numpy as np
import pytest

from engine.autodiff.expr import parse_formula
from engine.nn import optim
from engine.playground.race import PRESETS, RaceError, Racer, race

BOWL = parse_formula("x**2 + y**2")
START = {"x": -1.5, "y": 1.2}  # gradient there: (-3, 2.4)


@pytest.mark.parametrize(("racer", "expected"), [
    (Racer("sgd", 0.1), [-1.2, 0.96]),                       # p - lr g
    (Racer("momentum", 0.1, 0.9), [-1.2, 0.96]),             # v = g at the first step
    (Racer("nesterov", 0.1, 0.9), [-0.93, 0.744]),           # p - lr (g + 0.9 g)
    (Racer("rmsprop", 0.1, 0.9), [-1.5 + 0.1 / math.sqrt(0.1), 1.2 - 0.1 / math.sqrt(0.1)]),
    (Racer("adam", 0.1, 0.9), [-1.4, 1.1]),                  # bias-corrected: lr * sign(g)
], ids=lambda v: getattr(v, "optimizer", ""))
def test_first_step_matches_the_hand_computed_update(racer, expected):
    other = Racer("sgd", 0.01)
    lap = race(BOWL, START, [racer, other], steps=1)[0]
    np.testing.assert_allclose(lap.path.points[0], [-1.5, 1.2])
    np.testing.assert_allclose(lap.path.points[1], expected, rtol=1e-6)


def test_race_paths_are_engine_optim_updates_step_for_step():
    rosenbrock = parse_formula(PRESETS["Rosenbrock"].formula)
    racers = [Racer("adam", 0.05, 0.8), Racer("nesterov", 0.001, 0.7)]
    laps = race(rosenbrock, {"x": -1.2, "y": 1.0}, racers, steps=25)
    for lap, opt in zip(laps, [optim.adam(0.05, 0.8), optim.nesterov(0.001, 0.7)], strict=True):
        point, state = np.array([-1.2, 1.0]), opt.init(np.zeros(2))
        for k in range(25):
            np.testing.assert_allclose(lap.path.points[k], point, rtol=1e-12)
            x, y = point
            grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
            point, state = opt.update(point, grad, state)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_has_its_default_racers_finish_downhill(name):
    preset = PRESETS[name]
    laps = race(parse_formula(preset.formula), dict(zip("xy", preset.start, strict=True)),
                [Racer("sgd", preset.sgd_rate), Racer("adam", preset.adaptive_rate)],
                preset.steps)
    for lap in laps:
        assert not lap.path.diverged
        assert lap.final_value < lap.path.values[0]


def test_a_diverging_racer_is_reported_and_the_others_go_on():
    laps = race(BOWL, START, [Racer("sgd", 1.5), Racer("sgd", 0.1)], steps=200, tolerance=1e-6)
    wild, calm = laps
    assert wild.path.diverged and "ran off" in wild.path.stopped
    assert len(wild.path.points) < 201 and wild.steps_to_tolerance is None
    assert not calm.path.diverged and len(calm.path.points) == 201
    # (1 - 2 lr)^k shrinks the slope 2|p| below 1e-6 after k steps: the first such k.
    slope = 2 * np.hypot(-1.5, 1.2)
    assert calm.steps_to_tolerance == math.ceil(math.log(1e-6 / slope) / math.log(0.8))
    np.testing.assert_allclose(calm.path_length, np.hypot(-1.5, 1.2) * (1 - 0.8**200))


def test_variables_beyond_the_plotted_two_are_held():
    formula = parse_formula("(x - a)**2 + (y - a)**2")
    laps = race(formula, {"x": 0.0, "y": 0.0, "a": 2.0}, [Racer("sgd", 0.25)] * 2, steps=30,
                plotted=("x", "y"))
    np.testing.assert_allclose(laps[0].path.points[-1], [2.0, 2.0], atol=1e-6)


@pytest.mark.parametrize("racers", [[Racer("sgd", 0.1)], [Racer("sgd", 0.1)] * 5,
                                    [Racer("adagrad", 0.1)] * 2])
def test_bad_races_are_refused(racers):
    with pytest.raises(RaceError):
        race(BOWL, START, racers, steps=5)
