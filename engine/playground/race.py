"""The optimiser race: engine.nn.optim's optimisers descend one 2-D surface from the same point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.autodiff.explore import DescentPath, optimizer_path
from engine.autodiff.expr import Formula
from engine.nn import optim


class RaceError(ValueError):
    """A race that cannot be run as asked (too few or too many racers, an unknown optimiser)."""


@dataclass(frozen=True)
class Preset:
    """A classic test surface: its formula in x and y, where the race starts, a step size for
    plain SGD and one for the adaptive optimisers (RMSProp, Adam), and what to look for."""

    formula: str
    start: tuple[float, float]
    sgd_rate: float
    adaptive_rate: float
    steps: int
    note: str


PRESETS: dict[str, Preset] = {
    "round bowl": Preset("x**2 + y**2", (-1.5, 1.2), 0.1, 0.1, 60,
                         "Every optimiser heads for the centre; momentum overshoots a little."),
    "long narrow valley": Preset(
        "0.1*x**2 + 10*y**2", (-4.5, 0.6), 0.09, 0.1, 100,
        "Steep walls, a flat floor: plain SGD zig-zags across and crawls along; momentum "
        "and the adaptive methods run down the floor."),
    "Rosenbrock": Preset(
        "(1 - x)**2 + 100*(y - x**2)**2", (-1.2, 1.0), 0.001, 0.05, 300,
        "A curved valley with a nearly flat floor; the minimum is at (1, 1)."),
    "saddle": Preset(
        "x**2 + y**4/4 - y**2/2", (-1.5, 0.001), 0.1, 0.05, 100,
        "A saddle at (0, 0): the slope there is almost zero. Who escapes to a valley, and when?"),
    "Himmelblau": Preset(
        "(x**2 + y - 11)**2 + (x + y**2 - 7)**2", (-0.3, -0.9), 0.01, 0.1, 150,
        "Four minima of equal height: optimisers starting together may end in different ones."),
    "Beale": Preset(
        "(1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2 + (2.625 - x + x*y**3)**2",
        (1.0, 1.4), 0.01, 0.05, 300,
        "Flat plateaus and steep ridges; the minimum is at (3, 0.5)."),
}

# Each optimiser's constant the learner may set: momentum's and Nesterov's beta, RMSProp's
# decay, Adam's beta1 (None: it has none).
CONSTANTS: dict[str, str | None] = {"sgd": None, "momentum": "momentum", "nesterov": "momentum",
                                    "rmsprop": "decay", "adam": "beta1"}
DEFAULT_CONSTANT = 0.9
MIN_RACERS, MAX_RACERS = 2, 4


@dataclass(frozen=True)
class Racer:
    """One optimiser in the race: its name in engine.nn.optim.OPTIMIZERS, its step size and its
    constant (see CONSTANTS; ignored by plain SGD)."""

    optimizer: str
    learning_rate: float
    constant: float = DEFAULT_CONSTANT

    def make(self) -> optim.Optimizer:
        """The engine.nn.optim optimiser this racer runs (the networks' own update functions)."""
        if self.optimizer not in CONSTANTS:
            raise RaceError(f"unknown optimiser {self.optimizer!r}; choose one of "
                            f"{sorted(CONSTANTS)}")
        if self.optimizer == "sgd":
            return optim.sgd(self.learning_rate)
        return optim.OPTIMIZERS[self.optimizer](self.learning_rate, self.constant)


@dataclass(frozen=True)
class Lap:
    """One racer's run: its path, and the first step at which the slope |grad f| was at most
    the tolerance (None if never)."""

    racer: Racer
    path: DescentPath
    steps_to_tolerance: int | None

    @property
    def final_value(self) -> float:
        return float(self.path.values[-1]) if len(self.path.values) else float("nan")

    @property
    def path_length(self) -> float:
        """The distance travelled: the sum of the straight segments between its points."""
        return float(np.linalg.norm(np.diff(self.path.points, axis=0), axis=1).sum())


def first_flat_step(path: DescentPath, tolerance: float) -> int | None:
    """The first step at which |grad f| <= tolerance along `path`, None if none."""
    flat = np.flatnonzero(np.linalg.norm(path.gradients, axis=1) <= tolerance)
    return int(flat[0]) if len(flat) else None


def race(formula: Formula, start: Mapping[str, float], racers: Sequence[Racer], steps: int,
         tolerance: float = 1e-3, plotted: tuple[str, str] | None = None) -> list[Lap]:
    """Each racer descending `formula` over the `plotted` variables from `start` (the other
    variables held at their values), for up to `steps` steps. A racer that runs away or reaches
    an undefined point stops there (its path's `diverged` / `stopped` say so)."""
    if not MIN_RACERS <= len(racers) <= MAX_RACERS:
        raise RaceError(f"a race needs {MIN_RACERS} to {MAX_RACERS} optimisers, got "
                        f"{len(racers)}")
    laps = []
    for racer in racers:
        path = optimizer_path(formula, start, racer.make(), steps, plotted)
        laps.append(Lap(racer, path, first_flat_step(path, tolerance)))
    return laps
