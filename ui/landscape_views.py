"""The rooms' Landscape tab: the loss along init -> final, a 2-D slice, the PCA training path."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine import landscape
from engine.data import as_float
from engine.model import Model
from engine.settings import limits
from ui.charts import styled
from ui.rooms import Room, room_state

LINE_ALPHAS = np.linspace(-0.5, 1.5, 41)  # Goodfellow et al.'s interpolation, and beyond
SPAN = 1.0  # the 2-D slice covers [-SPAN, SPAN] along each filter-normalised direction


def compute(model: Model, run: Any, x: np.ndarray, y: np.ndarray, n: int,
            progress: Any) -> dict[str, Any]:
    """Every landscape of `model` on (x, y), n x n grids; progress(fraction, text) per row."""
    metrics = landscape.network_metrics(model.kind, model.architecture, x, y)
    batch = landscape.points_per_batch(model.kind, len(x))
    result: dict[str, Any] = {"n": n}
    latest = run.view().latest if run is not None else None
    if run is not None and "seed" in run.settings:
        start = landscape.initial_params(model.kind, model.architecture, run.settings["seed"])
        line = {k: np.asarray(model.params[k]) - start[k] for k in start}
        evaluate = landscape.grid_evaluator(metrics, start, [line], batch)
        result["line"] = evaluate(LINE_ALPHAS[:, None])
    axis = np.linspace(-SPAN, SPAN, n)
    directions = landscape.random_directions(jax.random.key(0), model.params)
    evaluate = landscape.grid_evaluator(metrics, model.params, directions, batch)
    rows = []
    for i, points in enumerate(landscape.grid_points(axis, axis)):
        rows.append(evaluate(points))
        progress((i + 1) / (2 * n), f"random slice: row {i + 1} of {n}")
    result["slice"] = (axis, np.stack(rows))
    flats = [s.flat for s in latest.history.snapshots if getattr(s, "flat", None) is not None] \
        if latest is not None else []
    if len(flats) >= 2:
        path = landscape.pca_path(np.stack(flats), landscape.flat_parameters(model.params))
        low, high = path.coordinates.min(axis=0), path.coordinates.max(axis=0)
        pad = np.maximum((high - low) * 0.2, 1e-3)
        xs, ys = (np.linspace(low[i] - pad[i], high[i] + pad[i], n) for i in range(2))
        directions = [landscape.unflatten(d, model.params) for d in path.directions]
        evaluate = landscape.grid_evaluator(metrics, model.params, directions, batch)
        rows = []
        for i, beta in enumerate(ys):
            rows.append(evaluate(np.column_stack([xs, np.full(n, beta)])))
            progress(0.5 + (i + 1) / (2 * n), f"PCA plane: row {i + 1} of {n}")
        result["pca"] = (path, xs, ys, np.stack(rows), latest.history.snapshot_steps)
    return result


def show_landscape(room: Room, model: Model, split: Any) -> None:
    """The tab: settings, a Compute button with a progress bar, and the three views."""
    key = f"{room.prefix}landscape"
    st.markdown(
        "Where did training walk? The loss of this model over **planes of weight space**: "
        "along the straight line from its initial to its final weights (Goodfellow et al. "
        "2015), on a slice through two random directions scaled filter by filter to the "
        "weights (Li et al. 2018), and on the plane of the two directions the weights moved "
        "along most during the run (PCA of the recorded snapshots).")
    left, right, button = st.columns([2, 2, 1])
    small = model.kind == "cnn"  # a CNN costs ~50x more a point: a coarser default
    n = left.slider("Grid points a side", 5, 61, 11 if small else 21, step=2, key=f"{key}_grid")
    digits = right.number_input("Digits it is measured on", 100, 10_000, 200 if small else 1000,
                                step=100, key=f"{key}_digits")
    problems = landscape.grid_problems(n, digits, limits())
    for problem in problems:
        st.warning(f"That landscape is too large: {problem} Choose fewer points or digits.")
    if button.button("Compute", key=f"{key}_go", type="primary", disabled=bool(problems)):
        x, y = landscape.evaluation_subset(split.x_test, split.y_test, digits)
        bar = st.progress(0.0, text="compiling…")
        result = compute(model, room_state(room).run, as_float(x), y, n,
                         lambda f, text: bar.progress(min(f, 1.0), text=text))
        bar.empty()
        st.session_state[key] = {"model": id(model), **result}
    result = st.session_state.get(key)
    if not result or result["model"] != id(model):
        st.info("Press **Compute** (a few seconds). It uses the model shown above; after a "
                "training run it also draws the run's path.")
        return
    draw(result, key)


def draw(result: dict[str, Any], key: str) -> None:
    """The three views of a computed landscape."""
    if "line" in result:
        st.plotly_chart(line_figure(result["line"]), key=f"{key}_line")
    axis, grid = result["slice"]
    contour, surface = st.columns(2)
    contour.plotly_chart(slice_figure(axis, grid[..., 0]), key=f"{key}_slice")
    surface.plotly_chart(surface_figure(axis, grid[..., 0]), key=f"{key}_surface")
    if "pca" in result:
        st.plotly_chart(pca_figure(*result["pca"]), key=f"{key}_pca")
    else:
        st.caption("The training path appears after a run in this session (it needs the "
                   "weights recorded along the run).")


def line_figure(values: np.ndarray) -> go.Figure:
    """Loss and accuracy (41, 2) along alpha: 0 the initial weights, 1 the final ones."""
    fig = go.Figure([
        go.Scatter(x=LINE_ALPHAS, y=values[:, 0], name="loss", line=dict(color="#d62728")),
        go.Scatter(x=LINE_ALPHAS, y=values[:, 1], name="accuracy", yaxis="y2",
                   line=dict(color="#1f77b4", dash="dot")),
    ])
    for alpha, text in ((0, "initial"), (1, "final")):
        fig.add_vline(x=alpha, line=dict(color="gray", dash="dash"), annotation_text=text)
    fig.update_layout(yaxis=dict(title="loss"), yaxis2=dict(title="accuracy", overlaying="y",
                                                            side="right", range=[0, 1]))
    fig.update_xaxes(title="α: weights = initial + α (final − initial)")
    return styled(fig, "1-D: the straight line from the initial to the final weights")


def slice_figure(axis: np.ndarray, loss: np.ndarray) -> go.Figure:
    """Contour of the loss (n, n) over two filter-normalised random directions."""
    fig = go.Figure([go.Contour(x=axis, y=axis, z=loss, colorscale="Viridis", ncontours=25,
                                colorbar=dict(title="loss", thickness=12)),
                     go.Scatter(x=[0], y=[0], mode="markers", name="final weights",
                                marker=dict(size=12, color="white",
                                            line=dict(color="black", width=2)))])
    fig.update_xaxes(title="direction 1 (filter-normalised)")
    fig.update_yaxes(title="direction 2")
    return styled(fig, "2-D: a random slice around the final weights", height=440)


def surface_figure(axis: np.ndarray, loss: np.ndarray) -> go.Figure:
    """The same slice as a 3-D surface."""
    fig = go.Figure(go.Surface(x=axis, y=axis, z=loss, colorscale="Viridis", showscale=False))
    fig.update_layout(scene=dict(xaxis_title="direction 1", yaxis_title="direction 2",
                                 zaxis_title="loss"))
    return styled(fig, "The same slice in 3-D (drag to turn)", height=440)


def pca_figure(path: landscape.PCAPath, xs: np.ndarray, ys: np.ndarray, grid: np.ndarray,
               steps: tuple[int, ...]) -> go.Figure:
    """The loss over the PCA plane with the run's path (its snapshots) drawn on it."""
    c = path.coordinates
    fig = go.Figure([
        go.Contour(x=xs, y=ys, z=grid[..., 0], colorscale="Viridis", ncontours=25,
                   colorbar=dict(title="loss", thickness=12)),
        go.Scatter(x=c[:, 0], y=c[:, 1], mode="lines+markers", name="training path",
                   line=dict(color="white", width=2), marker=dict(size=6, color="#f97316"),
                   customdata=np.asarray(steps[-len(c):]),
                   hovertemplate="step %{customdata}<extra></extra>"),
        go.Scatter(x=c[-1:, 0], y=c[-1:, 1], mode="markers", name="final weights",
                   marker=dict(size=12, color="white", line=dict(color="black", width=2))),
    ])
    share = path.explained * 100
    fig.update_xaxes(title=f"PCA direction 1 ({share[0]:.1f}% of the path's variance)")
    fig.update_yaxes(title=f"PCA direction 2 ({share[1]:.1f}%)")
    return styled(fig, f"The training path on the plane it moved in most "
                       f"({share.sum():.1f}% of its variance)", height=480)
