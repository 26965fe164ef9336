"""What the playground does with a formula: check its gradient three ways, descend its surface."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from engine.autodiff.expr import (
    DomainError,
    Formula,
    evaluate_numpy,
    evaluate_with_gradients,
    jax_function,
)
from engine.nn.optim import Optimizer, sgd

# Our engine and jax compute the same float64 chain rule: they agree to rounding.
JAX_TOLERANCE = 1e-9
# Central differences carry an O(h^2) truncation error and rounding of order eps / h.
DIFFERENCE_TOLERANCE = 1e-5


# A kink (abs, relu at 0): the slopes just left and right of the point differ by this much,
# relative to the gradient's size, and the gap does not shrink with the step as a curve's does.
KINK_GAP = 1e-3


def one_sided_differences(formula: Formula, values: Mapping[str, float],
                          relative_step: float = 1e-5) -> dict[str, tuple[float, float]]:
    """(slope on the left, slope on the right) of f along each variable v:
    ((f(v) - f(v - h)) / h, (f(v + h) - f(v)) / h), h = relative_step * max(1, |v|)."""
    point = {name: np.float64(values[name]) for name in formula.variables}
    centre = evaluate_numpy(formula, point)
    slopes = {}
    for name in formula.variables:
        h = relative_step * max(1.0, abs(float(point[name])))
        above = evaluate_numpy(formula, point | {name: point[name] + h})
        below = evaluate_numpy(formula, point | {name: point[name] - h})
        slopes[name] = (float((centre - below) / h), float((above - centre) / h))
    return slopes


def central_differences(formula: Formula, values: Mapping[str, float],
                        relative_step: float = 1e-5) -> dict[str, float]:
    """df/dv ≈ (f(v + h) - f(v - h)) / 2h for each variable v, h = relative_step * max(1, |v|):
    the mean of the two one-sided slopes."""
    return {name: (left + right) / 2 for name, (left, right)
            in one_sided_differences(formula, values, relative_step).items()}


def kinks(formula: Formula, values: Mapping[str, float],
          relative_step: float = 1e-5) -> dict[str, tuple[float, float]]:
    """{variable: (slope on the left, on the right)} for each variable along which f has a
    kink at `values` (is not differentiable there).

    At a kink the left and right slopes differ by a jump that stays when the step shrinks;
    on a smooth curve they differ by about h·f'' and the gap shrinks with h.
    """
    coarse = one_sided_differences(formula, values, relative_step)
    fine = one_sided_differences(formula, values, relative_step / 10)
    found = {}
    for name, (left, right) in coarse.items():
        gap, fine_gap = abs(right - left), abs(fine[name][1] - fine[name][0])
        if gap > KINK_GAP * (1 + max(abs(left), abs(right))) and fine_gap > gap / 2:
            found[name] = (left, right)
    return found


def jax_gradients(formula: Formula, values: Mapping[str, float]) -> dict[str, float]:
    """jax.grad of the same formula (walked with jax.numpy functions), in float64."""
    import jax

    args = [np.float64(values[name]) for name in formula.variables]
    with jax.enable_x64(True):
        grads = jax.grad(jax_function(formula), argnums=tuple(range(len(args))))(*args)
    return {name: float(g) for name, g in zip(formula.variables, grads, strict=True)}


@dataclass(frozen=True)
class GradientCheck:
    """Each variable's gradient by our engine, by jax.grad and by central differences, and the
    variables along which f has a kink here (where each tool may pick another subgradient)."""

    variables: tuple[str, ...]
    ours: dict[str, float]
    jax: dict[str, float]
    differences: dict[str, float]
    kinks: dict[str, tuple[float, float]] = field(default_factory=dict)  # slopes left, right

    @property
    def max_abs_vs_jax(self) -> float:
        return max((abs(self.ours[v] - self.jax[v]) for v in self.variables), default=0.0)

    @property
    def max_abs_vs_differences(self) -> float:
        return max((abs(self.ours[v] - self.differences[v]) for v in self.variables), default=0.0)

    @property
    def passed(self) -> bool:
        """Agreement within tolerances scaled by the gradients' size (nan fails), along every
        variable where f is differentiable."""
        smooth = [v for v in self.variables if v not in self.kinks]
        scale = 1.0 + max((abs(g) for g in self.ours.values()), default=0.0)
        return all(abs(self.ours[v] - self.jax[v]) <= JAX_TOLERANCE * scale
                   and abs(self.ours[v] - self.differences[v]) <= DIFFERENCE_TOLERANCE * scale
                   for v in smooth)


def check_gradients(formula: Formula, values: Mapping[str, float]) -> GradientCheck:
    """Our gradient beside jax.grad and central differences; raises DomainError like
    `evaluate_with_gradients` if the formula is undefined at `values`."""
    ours = evaluate_with_gradients(formula, values).gradients
    return GradientCheck(formula.variables, ours, jax_gradients(formula, values),
                         central_differences(formula, values), kinks(formula, values))


@dataclass(frozen=True)
class DescentPath:
    """Points (k, 2) visited by a descent over two variables, f at each (k,), the gradient
    there (k, 2), why it stopped early ("" if it ran every step) and whether it ran away."""

    points: np.ndarray
    values: np.ndarray
    stopped: str
    gradients: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    diverged: bool = False


MAX_DESCENT_STEPS = 500
ESCAPE_RADIUS = 1e6


def plotted_pair(formula: Formula, plotted: tuple[str, str] | None = None) -> tuple[str, str]:
    """The two variables a descent moves and a contour shows: `plotted`, or the formula's only
    two. ValueError if they are not two distinct variables of the formula."""
    pair = tuple(plotted) if plotted is not None else formula.variables
    if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(formula.variables):
        raise ValueError(f"a descent moves two distinct variables of {formula.variables}, "
                         f"got {pair}")
    return pair


def optimizer_path(formula: Formula, start: Mapping[str, float], optimizer: Optimizer,
                   steps: int, plotted: tuple[str, str] | None = None) -> DescentPath:
    """`optimizer` (an engine.nn.optim pair) moving the two `plotted` variables downhill from
    `start`, every other variable held at its `start` value; gradients from our engine.

    Stops early if f becomes undefined or the point runs away (|coordinate| > ESCAPE_RADIUS,
    or f not finite): diverged.
    """
    names = plotted_pair(formula, plotted)
    steps = int(np.clip(steps, 0, MAX_DESCENT_STEPS))
    held = {name: float(start[name]) for name in formula.variables}
    point = np.array([held[n] for n in names])
    state = optimizer.init(point)
    points, values, gradients, stopped, diverged = [], [], [], "", False
    for step in range(steps + 1):
        try:
            evaluation = evaluate_with_gradients(formula, held | dict(zip(names, point,
                                                                          strict=True)))
        except DomainError as error:
            stopped = f"stopped at step {step}: {error}"
            break
        points.append(point)
        values.append(evaluation.value)
        gradients.append([evaluation.gradients[n] for n in names])
        if step == steps:
            break
        point, state = optimizer.update(point, np.array(gradients[-1]), state)
        if not np.isfinite(point).all() or np.abs(point).max() > ESCAPE_RADIUS:
            stopped = (f"stopped at step {step + 1}: the point ran off to infinity "
                       "(try a smaller step size)")
            diverged = True
            break
    return DescentPath(np.array(points).reshape(-1, 2), np.array(values), stopped,
                       np.array(gradients).reshape(-1, 2), diverged)


def descent_path(formula: Formula, start: Mapping[str, float], learning_rate: float,
                 steps: int, plotted: tuple[str, str] | None = None) -> DescentPath:
    """Plain gradient descent (engine.nn.optim.sgd) over the two `plotted` variables (default:
    the formula's only two), the others held at their `start` values."""
    return optimizer_path(formula, start, sgd(learning_rate), steps, plotted)


def surface_grid(formula: Formula, x_range: tuple[float, float], y_range: tuple[float, float],
                 n: int = 60, plotted: tuple[str, str] | None = None,
                 held: Mapping[str, float] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xs (n,), ys (n,), f on the grid (n, n) indexed [y, x] over the two `plotted` variables
    (default: the formula's only two), the others at their `held` values; nan where undefined."""
    xs = np.linspace(*x_range, n)
    ys = np.linspace(*y_range, n)
    gx, gy = np.meshgrid(xs, ys)
    first, second = plotted_pair(formula, plotted)
    point = {name: np.float64((held or {}).get(name, 0.0)) for name in formula.variables}
    z = np.broadcast_to(evaluate_numpy(formula, point | {first: gx, second: gy}), gx.shape)
    return xs, ys, np.where(np.isfinite(z), z, np.nan)


def framing(path: np.ndarray, margin: float = 0.5, minimum: float = 2.0
            ) -> tuple[tuple[float, float], tuple[float, float]]:
    """x and y ranges that show the whole path (k, 2) with some room around it."""
    ranges = []
    for axis in range(2):
        low, high = float(path[:, axis].min()), float(path[:, axis].max())
        centre, half = (low + high) / 2, max((high - low) / 2 * (1 + margin), minimum / 2)
        ranges.append((centre - half, centre + half))
    return ranges[0], ranges[1]
