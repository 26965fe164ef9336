"""The "Projector" tab of both rooms: the test digits as points, placed by a layer's activations."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.data.mnist import as_float
from engine.explain import projector
from engine.models.model import Model
from ui.figures.charts import a_digit, styled
from ui.figures.pictures import enlarged
from ui.lazy import asked_for, kept
from ui.rooms import CNN, FEEDFORWARD
from ui.state import remembered
from ui.views.inside import MAX_INDEX
from ui.views.landscape import run_that_trained, trained_snapshots

PROJECTED = 1_000  # digits placed: the first ones of the test set (all of the embedded one)
ROOMS = {"ff": FEEDFORWARD, "cnn": CNN}  # the projector's key -> the room whose run it follows
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf")


def projector_figure(points: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                     explained: np.ndarray, selected: int | None = None, title: str = "",
                     extra: tuple[np.ndarray, str] | None = None,
                     frame: np.ndarray | None = None) -> go.Figure:
    """Digits as points (n, 2), one colour per true class (the legend switches classes on and
    off), misclassified ones drawn as crosses, the selected one ringed; hover names each digit.
    Every trace is WebGL: a browser draws WebGL above SVG, so an SVG mark would hide under them.
    explained (2,): the fraction of the variance along each axis. extra: one more point (2,)
    and its name (the learner's drawing), drawn as a black star. frame: points (m, 2) the view
    must hold besides these (so pictures of several snapshots share their axes' ranges)."""
    points = on_plane(points)
    extra = None if extra is None else (on_plane(extra[0])[0], extra[1])
    fig = go.Figure()
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        wrong = predicted[members] != digit
        fig.add_trace(go.Scattergl(
            x=points[members, 0], y=points[members, 1], mode="markers", name=str(digit),
            marker=dict(color=CLASS_COLOURS[digit], size=np.where(wrong, 10, 6),
                        symbol=np.where(wrong, "x", "circle"), opacity=0.75),
            customdata=np.stack([members, predicted[members]], axis=1),
            hovertemplate=(f"#%{{customdata[0]}}: {a_digit(digit)}, read as "
                           "%{customdata[1]}<extra></extra>")))
    if selected is not None:
        fig.add_trace(go.Scattergl(x=points[[selected], 0], y=points[[selected], 1], mode="markers",
                                 name=f"#{selected}", hoverinfo="skip", marker=dict(
                                     size=18, color="rgba(0,0,0,0)",
                                     line=dict(color="black", width=2))))
    if extra is not None:
        fig.add_trace(go.Scattergl(x=extra[0][:1], y=extra[0][1:2], mode="markers",
                                   name=extra[1], hovertemplate=f"{extra[1]}<extra></extra>",
                                   marker=dict(symbol="star", size=22, color="black",
                                               line=dict(color="white", width=1.5))))
    held = [points] + ([] if frame is None else [frame]) + ([] if extra is None else [extra[0]])
    low, high = view_range(np.concatenate([on_plane(p) for p in held]))
    fig.update_xaxes(title=f"PC 1 ({explained[0]:.0%} of the variance)", zeroline=False,
                     range=[low[0], high[0]])
    fig.update_yaxes(title=f"PC 2 ({explained[1]:.0%})" if len(explained) > 1 else "",
                     zeroline=False, range=[low[1], high[1]])
    styled(fig, title, height=520)
    fig.update_layout(legend=dict(orientation="v", title="true digit", x=1.02, y=1,
                                  xanchor="left", yanchor="top"))
    return fig


def on_plane(points: np.ndarray) -> np.ndarray:
    """Points (n, 2) from (n, 2), (n, 1) or one point (k,): a cloud with no variance has one
    axis only (engine.explain.projector.pca), drawn at height 0."""
    points = np.atleast_2d(points)
    return np.pad(points, ((0, 0), (0, 2 - points.shape[1])))[:, :2]


def view_range(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low (2,), high (2,)): the box around points (n, 2), 5% wider each way (never empty)."""
    low, high = points.min(axis=0), points.max(axis=0)
    margin = np.maximum(0.05 * (high - low), 1e-6)
    return low - margin, high + margin


def projection(model: Model, images: np.ndarray, layer: int) -> tuple[np.ndarray, projector.PCA]:
    """(points (n, 2), the PCA) of images (n, 28, 28) at `layer`."""
    cloud = projector.activations(model, images, layer)
    axes = projector.pca(cloud, 2)
    return axes.project(cloud), axes


def run_snapshots(key: str, model: Model) -> dict[int, np.ndarray]:
    """{step: flat parameters (P,)} of the snapshots of the room's run that trained `model`
    (none for a default, uploaded or restored model, or while a run is going)."""
    return trained_snapshots(run_that_trained(ROOMS[key], model) if key in ROOMS else None)


def pick_snapshot(model: Model, key: str) -> tuple[int, np.ndarray] | None:
    """A slider over the training run's snapshots, when the run left two or more: (the chosen
    snapshot's step, its flat parameters), or None without a history. (A plain slider over the
    snapshots' numbers: a room's history scrubber is its one select_slider.)"""
    history = run_snapshots(key, model)
    if len(history) < 2:
        return None
    steps = list(history)
    number = st.slider("Snapshot of the training run (1 = the earliest)", min_value=1,
                       max_value=len(steps), value=len(steps), key=f"{key}_projector_step",
                       help="Slide back to see how the layer sorted the digits earlier in the "
                            "run.")
    return steps[number - 1], history[steps[number - 1]]


def show_projector(model: Model, images: np.ndarray, labels: np.ndarray, *, key: str,
                   drawing: np.ndarray | None = None, drawing_label: str = "") -> None:
    """The tab: pick a layer; the test digits images (n, 28, 28) uint8 with labels (n,) as a
    PCA scatter of that layer's activations (the first PROJECTED digits), and one chosen digit
    beside it. drawing: one more digit (28, 28) in [0, 1], placed by the same axes as a star.
    """
    images, labels = images[:PROJECTED], labels[:PROJECTED]
    st.markdown(f"Every one of the {len(images):,} test digits becomes one point: its "
                "activations at the chosen layer (hundreds or thousands of numbers) are flattened "
                "to the two directions along which they vary most (**PCA**). Digits the layer "
                "finds alike land close together. Colour: the true digit; a **cross**: the model "
                "reads it wrong. Click a legend entry to hide a class, hover a point to name it.")
    names = projector.layer_names(model)
    left, right = st.columns([1, 3])
    # The names are the options: a new model's layers replace the old ones in the picker.
    layer = names.index(left.selectbox("Layer", names,
                                       key=remembered(f"{key}_projector_layer", names[0])))
    chosen = right.number_input(f"Digit to show (0 to {len(images) - 1})", min_value=0,
                                max_value=MAX_INDEX, step=1,
                                key=remembered(f"{key}_projector_digit", 0))
    if not asked_for(f"{key}_projection", f"Project the {len(images):,} digits"):
        return
    with st.spinner("Running the digits through the model and finding the principal axes…"):
        points, axes = kept(f"{key}_projection", model, layer,
                            lambda: projection(model, images, layer))
    seen, title, final = model, f"The test digits at {names[layer]}", points
    snapshot = pick_snapshot(model, key)
    if snapshot is not None:
        step, flat = snapshot
        seen, title = projector.at_snapshot(model, flat), f"{title}, step {step} of the run"
        points = kept(f"{key}_projection_step", model, (layer, step),
                      lambda: projector.snapshot_points(model, flat, images, layer, axes))
        st.caption(f"Step {step} of the run. The axes are the **final** model's: PCA is fitted "
                   "once on its activations, and every snapshot's activations are projected on "
                   "those two directions, so the points move in one fixed frame as you slide.")
    predicted = seen.predict_proba(as_float(images)).argmax(axis=1)
    selected = int(chosen) if 0 <= chosen < len(images) else None
    plot, digit = st.columns([3, 1])
    extra = None
    if drawing is not None:
        extra = (axes.project(projector.activations(seen, drawing[None], layer))[0],
                 drawing_label)
    plot.plotly_chart(projector_figure(points, labels, predicted, axes.explained, selected,
                                       title, extra, frame=final),
                      key=f"{key}_projector_chart", width="stretch")
    if selected is None:
        digit.warning(f"There is no digit #{int(chosen)}: choose 0 to {len(images) - 1}.")
        return
    digit.image(enlarged(as_float(images[selected]), 6),
                caption=f"#{selected}: {a_digit(int(labels[selected]))}, read as "
                        f"{predicted[selected]}")
    wrong = int((predicted != labels).sum())
    whose = "the final model's" if snapshot is not None else "the"
    digit.caption(f"{wrong} of {len(labels):,} digits read wrong (crosses). The two axes keep "
                  f"{axes.explained.sum():.0%} of how much {whose} activations vary.")
