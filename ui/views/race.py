"""The playground's descent sections: roll downhill on any formula, and the optimiser race."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.autodiff import explore
from engine.autodiff.expr import Formula, parse_formula
from engine.playground.race import (
    CONSTANTS,
    DEFAULT_CONSTANT,
    MAX_RACERS,
    PRESETS,
    Lap,
    RaceError,
    Racer,
    race,
)
from ui.figures.charts import styled
from ui.views import autodiff as views

OPTIMISER_NAMES = {"sgd": "SGD", "momentum": "Momentum", "nesterov": "Nesterov",
                   "rmsprop": "RMSProp", "adam": "Adam"}
COLOURS = {"sgd": "#f97316", "momentum": "#ef4444", "nesterov": "#a855f7",
           "rmsprop": "#22d3ee", "adam": "#facc15"}
OWN_FORMULA = "your formula"
MAX_FRAMES = 60  # an animation frame every few steps: smooth enough, light to send
RACE_DEFAULTS = {"ad_race_surface": "long narrow valley",
                 "ad_race_optimizers": ["sgd", "momentum", "adam"], "ad_race_tolerance": 1e-3,
                 **{f"ad_race_c_{name}": DEFAULT_CONSTANT for name in CONSTANTS}}


def seed_race_state() -> None:
    """The race's widget values, once per session (step sizes from the first surface)."""
    for key, value in RACE_DEFAULTS.items():
        st.session_state.setdefault(key, value)
    if "ad_race_steps" not in st.session_state:
        use_preset()


def plotted_variables(formula: Formula) -> tuple[str, str]:
    """The two variables to plot (key ad_plotted): a picker when the formula has more."""
    variables = list(formula.variables)
    chosen = st.session_state.get("ad_plotted") or []
    if len(chosen) != 2 or not set(chosen) <= set(variables):
        st.session_state.ad_plotted = variables[:2]
    if len(variables) > 2:
        st.multiselect("Plot against (pick two; the others stay at their values above)",
                       variables, key="ad_plotted", max_selections=2)
    return tuple(st.session_state.ad_plotted)


def show_roll_downhill(formula: Formula, values: Mapping[str, float]) -> None:
    """Section "Roll downhill": plain gradient descent over two of the formula's variables."""
    if len(formula.variables) < 2:
        st.info(f"Descent is drawn over two variables; this formula has "
                f"{len(formula.variables)}. Add a second one, e.g. `x**2 + 3*y**2`.")
        return
    plotted = plotted_variables(formula)
    if len(plotted) != 2:
        st.info("Pick two variables to plot.")
        return
    lr_column, steps_column = st.columns(2)
    lr_column.number_input("Step size", min_value=0.0001, max_value=2.0, step=0.01,
                           format="%.4f", key="ad_lr")
    steps_column.slider("Steps", 1, explore.MAX_DESCENT_STEPS // 2, key="ad_descent_steps")
    path = explore.descent_path(formula, values, st.session_state.ad_lr,
                                st.session_state.ad_descent_steps, plotted)
    if path.stopped:
        st.warning(path.stopped)
    x_range, y_range = explore.framing(path.points)
    surface = explore.surface_grid(formula, x_range, y_range, plotted=plotted, held=values)
    contour_column, values_column = st.columns([3, 2])
    contour_column.plotly_chart(views.descent_figure(*surface, path, plotted),
                                key="ad_descent_chart")
    values_column.plotly_chart(views.descent_values_figure(path), key="ad_descent_values")


def use_preset() -> None:
    """Set every optimiser's step size to what suits the picked surface."""
    preset = PRESETS.get(st.session_state.ad_race_surface)
    if preset is None:  # the learner's own formula: keep the step sizes as they are
        st.session_state.setdefault("ad_race_steps", 100)
        return
    for name in OPTIMISER_NAMES:
        adaptive = name in ("rmsprop", "adam")
        st.session_state[f"ad_race_lr_{name}"] = preset.adaptive_rate if adaptive else \
            preset.sgd_rate
    st.session_state.ad_race_steps = preset.steps


def racer_controls(names: list[str]) -> list[Racer]:
    """A step size (and the constant, if it has one) per chosen optimiser."""
    racers = []
    for column, name in zip(st.columns(max(len(names), 1)), names, strict=False):
        column.markdown(f"**{OPTIMISER_NAMES[name]}**")
        lr = column.number_input("step size", min_value=1e-5, max_value=10.0, format="%g",
                                 key=f"ad_race_lr_{name}")
        constant = DEFAULT_CONSTANT
        if CONSTANTS[name]:
            constant = column.number_input(CONSTANTS[name], min_value=0.0, max_value=0.999,
                                           step=0.05, format="%g", key=f"ad_race_c_{name}")
        racers.append(Racer(name, float(lr), float(constant)))
    return racers


def race_surface(formula: Formula | None, values: Mapping[str, float]
                 ) -> tuple[Formula, dict[str, float], tuple[str, str]] | None:
    """The raced formula, its start and its two moving variables (None: say why not)."""
    surface = st.session_state.ad_race_surface
    if surface in PRESETS:
        preset = PRESETS[surface]
        st.caption(f"f = `{preset.formula}` · {preset.note}")
        return parse_formula(preset.formula), dict(zip("xy", preset.start, strict=True)), \
            ("x", "y")
    if formula is None or len(formula.variables) < 2:
        st.info("Your formula (section 1) needs at least two variables to race on.")
        return None
    plotted = tuple(st.session_state.get("ad_plotted") or formula.variables[:2])
    st.caption(f"f = `{st.session_state.ad_formula}`, over {plotted[0]} and {plotted[1]}, "
               "from the values in section 1.")
    return formula, dict(values), plotted


def show_race(formula: Formula | None, values: Mapping[str, float]) -> None:
    """Section "Optimiser race": 2-4 engine.nn.optim optimisers on one surface, animated."""
    seed_race_state()
    st.pills("Surface", [*PRESETS, OWN_FORMULA], key="ad_race_surface", required=True,
             on_change=use_preset)
    surface = race_surface(formula, values)
    names = st.multiselect("Optimisers (two to four)", list(OPTIMISER_NAMES),
                           key="ad_race_optimizers", max_selections=MAX_RACERS,
                           format_func=OPTIMISER_NAMES.get)
    if surface is None:
        return
    if len(names) < 2:
        st.info("Pick at least two optimisers to race.")
        return
    racers = racer_controls(names)
    steps_column, tolerance_column = st.columns(2)
    steps = steps_column.slider("Steps", 10, explore.MAX_DESCENT_STEPS, key="ad_race_steps")
    tolerance = tolerance_column.select_slider(
        "Finished when the slope |∇f| is below", [1e-1, 1e-2, 1e-3, 1e-4, 1e-6],
        key="ad_race_tolerance", format_func=lambda t: f"{t:g}")
    try:
        with st.spinner("Racing…"):
            laps = race(surface[0], surface[1], racers, steps, tolerance, surface[2])
    except RaceError as error:
        st.error(f"That race can't be run: {error}.")
        return
    for lap in laps:
        if lap.path.diverged:
            st.warning(f"**{OPTIMISER_NAMES[lap.racer.optimizer]} diverged**: "
                       f"{lap.path.stopped}. Its step size is too large for this surface.")
        elif lap.path.stopped:
            st.warning(f"**{OPTIMISER_NAMES[lap.racer.optimizer]}** {lap.path.stopped}.")
    st.plotly_chart(race_figure(surface[0], surface[1], laps, surface[2]), key="ad_race_chart")
    st.dataframe(race_table(laps, tolerance), hide_index=True, width="stretch")


def race_table(laps: list[Lap], tolerance: float) -> list[dict[str, str]]:
    """One row per racer: its settings and how it did."""
    rows = []
    for lap in laps:
        outcome = ("diverged" if lap.path.diverged else "stopped" if lap.path.stopped else
                   "flat" if lap.steps_to_tolerance is not None else "still moving")
        rows.append({
            "optimiser": OPTIMISER_NAMES[lap.racer.optimizer],
            "step size": f"{lap.racer.learning_rate:g}",
            "constant": f"{lap.racer.constant:g}" if CONSTANTS[lap.racer.optimizer] else "–",
            f"steps to |∇f| ≤ {tolerance:g}": str(lap.steps_to_tolerance or "never"),
            "final f": f"{lap.final_value:.6g}",
            "path length": f"{lap.path_length:.4g}",
            "outcome": outcome,
        })
    return rows


def race_frame(laps: list[Lap], k: int) -> list[go.Scatter]:
    """Each racer's trail up to step k, and where it is at step k."""
    trails = [go.Scatter(x=lap.path.points[:k + 1, 0], y=lap.path.points[:k + 1, 1])
              for lap in laps]
    heads = [go.Scatter(x=lap.path.points[min(k, len(lap.path.points) - 1):][:1, 0],
                        y=lap.path.points[min(k, len(lap.path.points) - 1):][:1, 1])
             for lap in laps]
    return trails + heads


def race_figure(formula: Formula, start: Mapping[str, float], laps: list[Lap],
                plotted: tuple[str, str]) -> go.Figure:
    """Contour of f (log-scaled colours) with every racer's path, and a Play button that
    replays them step by step together."""
    kept = [lap.path.points for lap in laps if not lap.path.diverged] or [laps[0].path.points[:1]]
    x_range, y_range = explore.framing(np.vstack(kept), margin=0.3)
    xs, ys, z = explore.surface_grid(formula, x_range, y_range, n=80, plotted=plotted,
                                     held=start)
    shade = np.log1p(z - np.nanmin(z))  # deep valleys and steep walls both stay visible
    fig = go.Figure(go.Contour(x=xs, y=ys, z=shade, colorscale="Viridis", ncontours=25,
                               showscale=False, hoverinfo="skip"))
    longest = max(len(lap.path.points) for lap in laps)
    for i, trace in enumerate(race_frame(laps, longest)):
        lap = laps[i % len(laps)]
        name = OPTIMISER_NAMES[lap.racer.optimizer]
        colour = COLOURS[lap.racer.optimizer]
        if i < len(laps):
            trace.update(mode="lines", name=name, line=dict(color=colour, width=2.5))
        else:
            trace.update(mode="markers", showlegend=False, hoverinfo="skip",
                         marker=dict(size=11, color=colour, line=dict(color="black", width=1)))
        fig.add_trace(trace)
    steps = np.unique(np.linspace(0, longest - 1, min(MAX_FRAMES, longest)).round().astype(int))
    fig.frames = [go.Frame(data=race_frame(laps, int(k)), name=str(k),
                           traces=list(range(1, 2 * len(laps) + 1))) for k in steps]
    fig.update_layout(
        updatemenus=[dict(type="buttons", x=0, y=-0.12, xanchor="left", buttons=[dict(
            label="▶ Play", method="animate",
            args=[None, dict(frame=dict(duration=80, redraw=False), fromcurrent=False,
                             transition=dict(duration=0))])])],
        sliders=[dict(x=0.12, len=0.88, y=-0.05, currentvalue=dict(prefix="step "),
                      steps=[dict(label=str(k), method="animate",
                                  args=[[str(k)], dict(mode="immediate",
                                                       frame=dict(duration=0, redraw=False))])
                             for k in steps])])
    fig.update_xaxes(title=plotted[0], range=x_range)
    fig.update_yaxes(title=plotted[1], range=y_range)
    return styled(fig, "The race (▶ Play replays it; colours: log(1 + f − min f))", height=560)
