"""The CNN room's views: filters as heatmaps, feature maps of every conv layer, saliency, and
the training history of the followed digit. Figure builders are pure (data in, Figure out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine import cnn
from engine.predict import Model
from ui import charts
from ui.lab import enlarged, feature_map_mosaic, saliency_overlay

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
                      height=charts.CHART_HEIGHT, margin=charts.MARGIN, template="plotly_white",
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


def show_saliency(model: Model, image: np.ndarray, digit: int) -> None:
    """The saliency of `digit`'s score over image (28, 28), painted red on the dimmed digit."""
    gradient = np.asarray(cnn.saliency(model.params, image, digit, spec=model.architecture))
    st.image(enlarged(saliency_overlay(image, gradient)), width=196,
             caption=f"Saliency for {digit}: |∂ score / ∂ pixel|")


def show_digit(image: np.ndarray, caption: str) -> None:
    """A 28×28 image in [0, 1], enlarged with crisp pixels."""
    grey = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    st.image(enlarged(np.repeat(grey[..., None], 3, axis=2)), width=196, caption=caption)
