"""The CNN room's views: filters as heatmaps, feature maps of every conv layer, saliency, and
the training history of the followed digit. Figure builders are pure (data in, Figure out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine import cnn
from engine.models.model import Model
from engine.training.loop import Progress
from engine.training.service import RunView
from ui.figures import charts
from ui.figures.pictures import (
    VIEW_PIXEL,
    enlarged,
    feature_map_mosaic,
    saliency_overlay,
    show_digit,
)
from ui.state import remembered
from ui.views.explain import show_where_it_looks

DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"]
MAP_COLUMNS = 8  # feature maps (and filters) per row
FILTER_PIXEL = 22  # screen pixels per kernel weight


def filters_figure(filters: np.ndarray, title: str = "") -> go.Figure:
    """First-layer filters (F, k, k) as little heatmaps: red positive, blue negative weights.

    Tall enough that each weight is about FILTER_PIXEL pixels (the image keeps its aspect).
    """
    n, k, _ = filters.shape
    columns = min(n, MAP_COLUMNS)
    fig = charts.weight_grid_figure(filters, columns=columns, title=title)
    rows = -(-n // columns)
    fig.update_layout(height=charts.MARGIN["t"] + charts.MARGIN["b"] + 20
                      + FILTER_PIXEL * (rows * (k + 1) - 1))
    return fig


def prediction_history_figure(steps: Sequence[int], probabilities: np.ndarray,
                              steps_per_epoch: int, marked_step: int | None = None) -> go.Figure:
    """How the net's probabilities (n_snapshots, 10) for one digit moved during training.

    One line per digit, x in epochs; a vertical line at `marked_step` (the slider's position).
    """
    x = np.asarray(steps, dtype=float) / max(1, steps_per_epoch)
    probabilities = np.asarray(probabilities, dtype=float)
    fig = go.Figure([
        go.Scatter(x=x, y=probabilities[:, d], name=str(d), mode="lines+markers",
                   line=dict(color=DIGIT_COLOURS[d]), marker=dict(size=5))
        for d in range(probabilities.shape[1])
    ])
    if marked_step is not None:
        fig.add_vline(x=marked_step / max(1, steps_per_epoch), line_dash="dot",
                      line_color="#444")
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="probability", range=[0, 1.02])
    fig.update_layout(title="Its probabilities for the followed digit, during training",
                      height=charts.CHART_HEIGHT, margin=charts.MARGIN,
                      legend=dict(title="digit", orientation="h", yanchor="bottom", y=1.0,
                                  x=1, xanchor="right"))
    return fig


def show_feature_maps(model: Model, image: np.ndarray) -> None:
    """Every conv layer's feature maps for image (28, 28), one mosaic per layer."""
    spec: cnn.CNNSpec = model.architecture
    maps = cnn.feature_maps(model.params, image, spec=spec)
    for block, layer_maps in enumerate(maps, start=1):
        layer_maps = np.asarray(layer_maps)
        h, w, n = layer_maps.shape
        # Later layers' maps are smaller: draw them bigger, so every layer spans a similar width.
        factor = max(2, 84 // h)
        st.image(enlarged(feature_map_mosaic(layer_maps, columns=min(n, MAP_COLUMNS)), factor),
                 caption=f"Block {block}: {n} feature maps of {h}×{w} after conv "
                         f"{spec.kernel_size}×{spec.kernel_size} + ReLU (bright = strong), "
                         f"each scaled to its own maximum")


def show_saliency(model: Model, image: np.ndarray, digit: int, where=st) -> None:
    """The saliency of `digit`'s score over image (28, 28), painted red on the dimmed digit
    (in `where`: the page, or a column)."""
    gradient = np.asarray(cnn.saliency(model.params, image, digit, spec=model.architecture))
    where.image(enlarged(saliency_overlay(image, gradient)), width=28 * VIEW_PIXEL,
                caption=f"Saliency for {digit}: |∂ score / ∂ pixel|, the pixels that move its "
                        "score most")


def show_cnn_view(model: Model, image: np.ndarray, digit: int) -> None:
    """What the CNN looks at in `image` (28, 28): its saliency for `digit`, and what the
    first layer's filters respond to."""
    first_layer = np.asarray(cnn.feature_maps(model.params, image, spec=model.architecture)[0])
    left, right = st.columns([1, 2])
    show_saliency(model, image, digit, where=left)
    right.image(enlarged(feature_map_mosaic(first_layer, columns=MAP_COLUMNS), factor=3),
                caption=f"First layer: what each of its {first_layer.shape[-1]} filters "
                        "responds to (bright = strong)")


def draw_latest_filters(event: Progress, key: str) -> None:
    """The live panel's extra: the first layer's filters as they are now."""
    st.plotly_chart(filters_figure(event.history.snapshots[-1].filters,
                                   "First-layer filters, live (red +, blue −)"),
                    key=f"{key}_filters_chart", width="stretch")


def show_inside(model: Model, follow: np.ndarray | None, follow_label: str) -> None:
    """The followed digit through the net: its answer, saliency, every feature map and, when
    asked, the attribution methods."""
    if follow is None:
        st.info("Draw a digit above (or follow a test digit) to look inside the net.")
        return
    probabilities = model.predict_proba(follow[None])[0]
    guess = int(probabilities.argmax())
    left, middle, right = st.columns([1, 1, 2])
    with left:
        show_digit(follow, follow_label)
    with middle:
        show_saliency(model, follow, guess)
    right.plotly_chart(charts.probability_bars_figure(
        probabilities, charts.reads_title(guess, float(probabilities[guess]))),
        key="cnn_probability_chart", width="stretch")
    st.markdown("**Feature maps**: what each filter of each conv layer responds to in this "
                "digit. The first layer finds strokes and edges; later layers combine them.")
    show_feature_maps(model, follow)
    show_where_it_looks(model, "this CNN", follow, probabilities, prefix="cnn")


def history_key(view: RunView) -> str:
    """The widget key of the history scrubber of this run (its value: a snapshot's index)."""
    return f"cnn_history_{view.id}"


def scrubbed_step(view: RunView | None) -> int | None:
    """The training step the history scrubber is at (None: no scrubber of this run yet)."""
    at = None if view is None else st.session_state.get(history_key(view))
    if at is None or view.latest is None:
        return None
    steps = view.latest.history.snapshot_steps
    return steps[at] if 0 <= at < len(steps) else None


def show_history(view: RunView | None, followed: str) -> None:
    """Scrub back through an ended run: its filters and its answer for the followed digit at
    each evaluation."""
    if view is not None and view.active:
        st.info("Training: its history can be scrubbed here once the run ends.")
        return
    if view is None or view.latest is None or not view.latest.history.snapshots:
        st.info("Train a net (section 2): every evaluation records its filters and its answer "
                "for the followed digit, and here you can scrub back through them.")
        return
    event = view.latest
    snapshots = event.history.snapshots
    steps = event.history.snapshot_steps
    steps_per_epoch = max(1, event.total_steps // event.epochs)
    at = st.select_slider("What the net looked like at step", options=list(range(len(steps))),
                          key=remembered(history_key(view), len(steps) - 1),
                          format_func=lambda i: f"{steps[i]} (epoch "
                                                f"{steps[i] / steps_per_epoch:.1f})")
    left, right = st.columns([3, 2])
    left.plotly_chart(filters_figure(snapshots[at].filters,
                                     f"First-layer filters at step {steps[at]}"),
                      key="cnn_history_filters_chart", width="stretch")
    if snapshots[at].probabilities is None:
        right.info("No digit was followed during this run.")
        return
    right.plotly_chart(charts.probability_bars_figure(
        snapshots[at].probabilities, f"Its answer for {followed} at step {steps[at]}"),
        key="cnn_history_bars_chart", width="stretch")
    st.plotly_chart(prediction_history_figure(
        steps, np.stack([s.probabilities for s in snapshots]), steps_per_epoch,
        marked_step=steps[at]), key="cnn_history_lines_chart", width="stretch")
