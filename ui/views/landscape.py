"""The rooms' Landscape tab: the loss along init -> final, a 2-D slice, the PCA training path."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.app.settings import limits
from engine.data.mnist import as_float
from engine.explain import landscape
from engine.models.model import Model
from engine.training.service import Run
from engine.training.status import RunStatus
from ui.figures.charts import styled
from ui.rooms.state import Room, room_state
from ui.state import remembered
from ui.training import REFRESH_SECONDS, run_service


def show_landscape(room: Room, model: Model, split: Any, marked_step: int | None = None
                   ) -> None:
    """The tab: settings, Compute (a background job with a progress bar and Cancel), and the
    three views of the last landscape computed for this model; `marked_step` (the history
    scrubber's step) is marked on the training path."""
    key = f"{room.prefix}landscape"
    st.markdown(
        "Where did training walk? The loss of this model over **planes of weight space**: "
        "along the straight line from its initial to its final weights (Goodfellow et al. "
        "2015), on a slice through two random directions scaled filter by filter to the "
        "weights (Li et al. 2018), and on the plane of the two directions the weights moved "
        "along most during the run (PCA of the recorded snapshots).")
    left, right, button = st.columns([2, 2, 1])
    plane = model.family.plane_net(model.architecture)
    n = left.slider("Grid points a side", 5, 61, step=2,
                    key=remembered(f"{key}_grid", plane.preferred_resolution))
    digits = right.number_input("Digits it is measured on", 100, 10_000, step=100,
                                key=remembered(f"{key}_digits", plane.preferred_digits))
    problems = landscape.grid_problems(n, digits, limits())
    for problem in problems:
        st.warning(f"That landscape is too large: {problem} Choose fewer points or digits.")
    model_id, job = st.session_state.get(f"{key}_job", (None, None))
    busy = job is not None and job.view().active
    if button.button("Compute", key=f"{key}_go", type="primary", disabled=bool(problems) or busy):
        model_id, job = id(model), start_job(room, model, split, n, digits)
        st.session_state[f"{key}_job"] = (model_id, job)
    if job is not None and model_id == id(model):
        job_panel(job, model_id, key)
    result = st.session_state.get(key)
    if result is not None and result[0] == id(model):
        draw(result[1], key, marked_step)
    elif job is None or not job.view().active:
        st.info("Press **Compute** (a few seconds). It uses the model shown above; after a "
                "training run it also draws the run's path.")


def start_job(room: Room, model: Model, split: Any, n: int, digits: int) -> Run:
    """Start computing the landscape of `model` on `digits` test digits, n x n grids, in the
    run service; with the room's run (if any) its initial weights and its path."""
    x, y = landscape.evaluation_subset(split.x_test, split.y_test, digits)
    run = run_that_trained(room, model)
    initial = (landscape.initial_params(model.family, model.architecture, run.settings["seed"])
               if run is not None and "seed" in run.settings else None)
    snapshots = trained_snapshots(run)
    job = landscape.LandscapeJob(
        model.family, model.architecture, dict(model.params), initial,
        np.stack(list(snapshots.values())) if snapshots else None, tuple(snapshots),
        as_float(x), y, n)
    return run_service().start(lambda stop: landscape.landscape_events(job, stop),
                               kind="landscape")


def run_that_trained(room: Room, model: Model) -> Run | None:
    """The room's run if it has ended with these very weights (not another model shown since,
    nor a run still going), else None."""
    run = room_state(room).run
    trained = None if run is None else run.view().model
    if trained is None or trained.architecture != model.architecture:
        return None
    same = all(np.array_equal(trained.params[name], model.params[name]) for name in model.params)
    return run if same else None


def trained_snapshots(run: Run | None) -> dict[int, np.ndarray]:
    """{step: flat parameters (P,)} of the run's snapshots that kept them (none without a run,
    or for a run restored from its file)."""
    latest = run.view().latest if run is not None else None
    if latest is None:
        return {}
    return {step: snapshot.flat for step, snapshot in zip(
        latest.history.snapshot_steps, latest.history.snapshots, strict=True)
        if getattr(snapshot, "flat", None) is not None}


def job_panel(job: Run, model_id: int, key: str) -> None:
    """The job's progress bar and Cancel button, redrawn every REFRESH_SECONDS while it runs;
    when it ends, its landscape is kept (session state, with the id of the model it is of) and
    the page reruns to draw it."""
    first = job.view()

    @st.fragment(run_every=REFRESH_SECONDS if first.active else None)
    def panel() -> None:
        job.touch()
        view = job.view()
        event = view.latest
        if view.status == RunStatus.QUEUED:
            st.info("Waiting for a free slot: the server computes a few things at a time.")
        elif view.active:
            bar, cancel = st.columns([5, 1])
            bar.progress(0.0 if event is None else event.step / event.total_steps,
                         text="Compiling…" if event is None else event.text)
            if cancel.button("Cancel", key=f"{key}_cancel"):
                job.stop()
        elif view.status == RunStatus.FINISHED:  # kept whenever the page sees it ended
            st.session_state[key] = (model_id, event.landscape)
        elif view.status in (RunStatus.STOPPED, RunStatus.ABANDONED):
            st.info(f"Cancelled: {view.message}", icon=":material/stop_circle:")
        elif view.status == RunStatus.FAILED:
            st.error(view.message)
        if first.active and not view.active:
            st.rerun()

    panel()


def draw(result: landscape.Landscape, key: str, marked_step: int | None) -> None:
    """The three views of a computed landscape."""
    if result.line is not None:
        st.plotly_chart(line_figure(result.line), key=f"{key}_line")
    contour, surface = st.columns(2)
    contour.plotly_chart(slice_figure(result.axis, result.slice[..., 0]), key=f"{key}_slice")
    surface.plotly_chart(surface_figure(result.axis, result.slice[..., 0]),
                         key=f"{key}_surface")
    if result.path is not None:
        marked, source = (marked_step, "history tab") if marked_step is not None else (
            pick_step(result.steps, key), "slider")
        st.plotly_chart(pca_figure(result, marked, source), key=f"{key}_pca")
    else:
        st.caption("The training path appears after a run in this session (it needs the "
                   "weights recorded along the run).")


def pick_step(steps: tuple[int, ...], key: str) -> int | None:
    """Where the room has no history scrubber: a slider over the path's recorded steps, its step
    (None for a path of one step)."""
    if len(steps) < 2:
        return None
    return st.select_slider("Mark a step of the run on its path", options=list(steps),
                            value=steps[-1], key=f"{key}_mark",
                            help="Where the weights were at that step, ringed on the path.")


def line_figure(values: np.ndarray) -> go.Figure:
    """Loss and accuracy (41, 2) along alpha: 0 the initial weights, 1 the final ones."""
    fig = go.Figure([
        go.Scatter(x=landscape.LINE_ALPHAS, y=values[:, 0], name="loss",
                   line=dict(color="#d62728")),
        go.Scatter(x=landscape.LINE_ALPHAS, y=values[:, 1], name="accuracy", yaxis="y2",
                   line=dict(color="#1f77b4", dash="dot")),
    ])
    for alpha, text in ((0, "initial"), (1, "final")):
        fig.add_vline(x=alpha, line=dict(color="gray", dash="dash"), annotation_text=text)
    fig.update_layout(yaxis=dict(title="loss"), yaxis2=dict(title="accuracy", overlaying="y",
                                                            side="right", range=[0, 1],
                                                            tickformat=".0%"))
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


def pca_figure(result: landscape.Landscape, marked_step: int | None, source: str) -> go.Figure:
    """The loss over the PCA plane with the run's path (its snapshots) drawn on it, and the
    snapshot of `marked_step` (if it is one of the path's) ringed, labelled with the `source`
    of the step (the control that chose it)."""
    path, (xs, ys), c = result.path, result.path_axes, result.path.coordinates
    fig = go.Figure([
        go.Contour(x=xs, y=ys, z=result.path_grid[..., 0], colorscale="Viridis", ncontours=25,
                   colorbar=dict(title="loss", thickness=12)),
        go.Scatter(x=c[:, 0], y=c[:, 1], mode="lines+markers", name="training path",
                   line=dict(color="white", width=2), marker=dict(size=6, color="#f97316"),
                   customdata=np.asarray(result.steps),
                   hovertemplate="step %{customdata}<extra></extra>"),
        go.Scatter(x=c[-1:, 0], y=c[-1:, 1], mode="markers", name="final weights",
                   marker=dict(size=12, color="white", line=dict(color="black", width=2))),
    ])
    if marked_step in result.steps:
        at = result.steps.index(marked_step)
        fig.add_trace(go.Scatter(x=c[at:at + 1, 0], y=c[at:at + 1, 1], mode="markers",
                                 name=f"step {marked_step} ({source})",
                                 marker=dict(size=18, color="rgba(0,0,0,0)", symbol="circle",
                                             line=dict(color="#ef4444", width=3))))
    share = path.explained * 100
    fig.update_xaxes(title=f"PCA direction 1 ({share[0]:.1f}% of the path's variance)")
    fig.update_yaxes(title=f"PCA direction 2 ({share[1]:.1f}%)")
    styled(fig, f"The training path on the plane it moved in most ({share.sum():.1f}% of its "
                f"variance)", height=500)
    # Under the axis: beside that long title, the legend ran over its end.
    return fig.update_layout(legend=dict(yanchor="top", y=-0.14, x=0.5, xanchor="center"),
                             margin=dict(b=40))
