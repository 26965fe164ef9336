"""Plotly figure builders shared by the rooms: pure functions, data in, `go.Figure` out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

CHART_HEIGHT = 300
MARGIN = dict(l=10, r=10, t=40, b=10)
TRAIN_COLOUR, VAL_COLOUR, TEST_COLOUR = "#1f77b4", "#ff7f0e", "#2ca02c"
BEST_BAR, IDLE_BAR = "#d62728", "#9ecae1"  # a probability chart's most probable digit, the rest

# The house template, plotly_white, is plotly's default here: a new figure takes the default
# already validated, where naming the template in a figure's layout had plotly validate a copy
# of it (a styled figure took ~11 ms to build, ~3 ms now; the figure's JSON is the same).
pio.templates.default = "plotly_white"


def styled(fig: go.Figure, title: str, height: int = CHART_HEIGHT) -> go.Figure:
    """The house style on `fig` (title, height, margins, legend on top; the white template is
    every figure's default)."""
    fig.update_layout(title=title, height=height, margin=MARGIN,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return fig


def smoothed(values: Sequence[float], weight: float | None = None) -> np.ndarray:
    """Exponential moving average (n,), debiased so the first values are not pulled to 0.

    By default its memory grows with the run (about n / 20 values, 1 to 50), so a short curve is
    not dragged behind its data and a long one is still smooth.
    """
    if weight is None:
        weight = 1 - 1 / np.clip(len(values) // 20, 1, 50)
    out = np.empty(len(values))
    average = 0.0
    for i, v in enumerate(values):
        average = weight * average + (1 - weight) * v
        out[i] = average / (1 - weight ** (i + 1))
    return out


FEW_POINTS = 50  # a curve of this many points or fewer is drawn with its points marked


def loss_curve_figure(losses: Sequence[float], steps_per_epoch: int | None = None,
                      epochs: int | None = None, max_points: int = 2000) -> go.Figure:
    """Training loss of every step (faint) and its moving average, x = step (or epoch).

    With epochs, the x axis spans the whole run from the start, so the curve grows into it.
    Long runs are thinned to about max_points points, so the browser stays quick. A short
    curve has its points marked (one point is no line); a loss that blew up to NaN or infinity
    is marked with a red cross at the top of the chart, named in the legend.
    """
    losses = np.asarray(losses, dtype=float)
    stride = max(1, len(losses) // max_points)
    x = np.arange(1, len(losses) + 1)
    if steps_per_epoch:
        x = x / steps_per_epoch
    finite = np.isfinite(losses)
    mode = "lines+markers" if len(losses) <= FEW_POINTS else "lines"
    fig = go.Figure([
        go.Scatter(x=x[::stride], y=losses[::stride], name="each step", mode=mode,
                   line=dict(color=TRAIN_COLOUR, width=1), opacity=0.35),
        go.Scatter(x=x[finite][::stride], y=smoothed(losses[finite])[::stride],
                   name="smoothed", mode="lines", line=dict(color=TRAIN_COLOUR, width=2.5)),
    ])
    if not finite.all():
        top = float(np.max(losses[finite], initial=1.0))
        fig.add_scatter(x=x[~finite], y=np.full((~finite).sum(), top), name="blew up (NaN)",
                        mode="markers", marker=dict(symbol="x", size=12, color="#d62728"))
    _run_axis(fig, steps_per_epoch, epochs)
    fig.update_yaxes(title="loss", rangemode="tozero")
    return styled(fig, "Training loss")


def _run_axis(fig: go.Figure, steps_per_epoch: int | None, epochs: int | None) -> None:
    """The x axis of a run's curves: the whole run in epochs, with a margin on both sides so a
    point at the start or the end (a 1-epoch run's last evaluation) is not cut at the edge."""
    fig.update_xaxes(title="epoch" if steps_per_epoch else "step")
    if steps_per_epoch and epochs:
        margin = 0.03 * epochs
        fig.update_xaxes(range=[-margin, epochs + margin])


def accuracy_curve_figure(steps: Sequence[int], val: Sequence[float], test: Sequence[float],
                          steps_per_epoch: int | None = None, epochs: int | None = None,
                          train: Sequence[float] = ()) -> go.Figure:
    """Validation and test accuracy at each evaluation, in percent, and the accuracy on fixed
    training digits (dashed) when measured: far above validation is overfitting. The y axis
    starts a little below the lowest value, so late gains stay visible."""
    x = np.asarray(steps, dtype=float) / (steps_per_epoch or 1)
    fig = go.Figure([
        go.Scatter(x=x, y=100 * np.asarray(val), name="validation", mode="lines+markers",
                   line=dict(color=VAL_COLOUR)),
        go.Scatter(x=x, y=100 * np.asarray(test), name="test", mode="lines+markers",
                   line=dict(color=TEST_COLOUR)),
    ])
    if len(train):
        fig.add_scatter(x=x, y=100 * np.asarray(train), name="training digits",
                        mode="lines+markers", line=dict(color=TRAIN_COLOUR, dash="dash"))
    _run_axis(fig, steps_per_epoch, epochs)
    lowest = min([*val, *test, *train], default=0.0)
    fig.update_yaxes(title="accuracy (%)", range=[max(0.0, 100 * lowest - 5), 100.5])
    return styled(fig, "Accuracy")


def tile(images: np.ndarray, columns: int, gap: int = 1) -> np.ndarray:
    """Images (n, h, w) laid out in rows of `columns`, separated by NaN gaps (shown empty)."""
    n, h, w = images.shape
    rows = max(1, -(-n // columns))
    mosaic = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        mosaic[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return mosaic


def _image_axes(fig: go.Figure) -> None:
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")


def weight_grid_figure(images: np.ndarray, columns: int = 16, title: str = "") -> go.Figure:
    """Weight images (n, 28, 28) in a grid; red positive, blue negative, white zero.

    Each image is scaled by its own largest |weight|, so every unit's pattern is visible.
    """
    scale = np.abs(images).reshape(len(images), -1).max(axis=1)
    normalised = images / np.where(scale > 0, scale, 1)[:, None, None]
    fig = go.Figure(go.Heatmap(z=tile(normalised, min(columns, len(images))),
                               colorscale="RdBu_r", zmin=-1, zmax=1, showscale=False,
                               hoverinfo="skip"))
    _image_axes(fig)
    rows = -(-len(images) // columns)
    return styled(fig, title, height=max(160, 40 + rows * 48))


def digit_gallery_figure(images: np.ndarray, captions: Sequence[str], columns: int = 10,
                         title: str = "") -> go.Figure:
    """Digits (n, 28, 28) in [0, 1] in a grid, each with its caption (e.g. "3 (true 5)") above."""
    gap = 8
    fig = go.Figure(go.Heatmap(z=tile(images, columns, gap=gap), colorscale="gray_r", zmin=0,
                               zmax=1, showscale=False, hoverinfo="skip"))
    for i, caption in enumerate(captions):
        r, c = divmod(i, columns)
        fig.add_annotation(x=c * (28 + gap) + 13.5, y=r * (28 + gap) - 1, text=caption,
                           showarrow=False, yanchor="bottom", font=dict(size=11))
    _image_axes(fig)
    rows = max(1, -(-len(images) // columns))
    fig.update_yaxes(range=[rows * (28 + gap) - gap, -gap])
    return styled(fig, title, height=60 + rows * 80)


def confusion_matrix_figure(matrix: np.ndarray, title: str = "Confusion matrix") -> go.Figure:
    """Counts (10, 10): row = true digit, column = predicted digit."""
    labels = [str(i) for i in range(len(matrix))]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues",
                               text=matrix, texttemplate="%{text}", showscale=False,
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_xaxes(title="predicted", side="top", type="category")
    fig.update_yaxes(title="true", autorange="reversed", type="category", scaleanchor="x")
    return styled(fig, title, height=420)


def probability_bars_figure(probabilities: Sequence[float], title: str = "") -> go.Figure:
    """One bar per digit (10,), the most probable one highlighted."""
    probabilities = np.asarray(probabilities, dtype=float)
    best = int(probabilities.argmax())
    colours = [BEST_BAR if i == best else IDLE_BAR for i in range(len(probabilities))]
    fig = go.Figure(go.Bar(x=[str(i) for i in range(len(probabilities))], y=probabilities,
                           marker_color=colours, text=[f"{p:.0%}" for p in probabilities],
                           textposition="outside"))
    fig.update_xaxes(title="digit", type="category")
    fig.update_yaxes(title="probability", range=[0, 1.1])
    return styled(fig, title)


def gradient_difference_figure(layers: Sequence[str], max_abs: Sequence[float],
                               max_rel: Sequence[float], title: str = "",
                               tolerance: float | None = None) -> go.Figure:
    """Per layer, how far two engines' gradients are apart: max absolute and relative
    difference on a log axis (a zero is drawn at 1e-12, where a log axis can show it), and the
    relative tolerance as a dashed line when given."""
    floor = 1e-12
    fig = go.Figure([
        go.Bar(x=list(layers), y=np.maximum(max_abs, floor), name="max |difference|",
               marker_color="#1f77b4"),
        go.Bar(x=list(layers), y=np.maximum(max_rel, floor), name="relative to max |gradient|",
               marker_color="#ff7f0e"),
    ])
    fig.update_yaxes(type="log", title="difference", exponentformat="e")
    if tolerance is not None:
        fig.add_hline(y=tolerance, line_dash="dash", line_color="#d62728",
                      annotation_text=f"tolerance {tolerance:g} (relative)")
    styled(fig, title)
    # Below the plot: the layer names are short, the legend entries are not.
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.15, x=0,
                                                   xanchor="left", yanchor="top"))
    return fig


def a_digit(digit: int) -> str:
    """"a 7", "an 8": the digit with the article its spoken name takes."""
    return f"{'an' if digit == 8 else 'a'} {digit}"


def reads_title(digit: int, confidence: float | None = None) -> str:
    """"It reads an 8 (97%)"."""
    shown = "" if confidence is None else f" ({confidence:.0%})"
    return f"It reads {a_digit(digit)}{shown}"
