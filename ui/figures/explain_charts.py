"""Figures of the sketch lab's explanations: attribution maps and adversarial digits (plotly)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.explain.attribution import METHODS, Explanation, shared_limits

DIVERGING = "RdBu_r"  # red: raises the class score, blue: lowers it, white: no effect
GREYS = [[0.0, "black"], [1.0, "white"]]
MAP_PX = 150  # screen pixels per 28x28 map


def _heatmap(values: np.ndarray, **style) -> go.Heatmap:
    """One 28x28 image as a heatmap, row 0 on top, no hover clutter beyond the value."""
    return go.Heatmap(z=np.asarray(values)[::-1], hovertemplate="%{z:.3g}<extra></extra>",
                      **style)


def _square_axes(figure: go.Figure) -> None:
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, scaleanchor="x", constrain="domain")
    for axis in figure.layout:
        if axis.startswith("yaxis") and axis != "yaxis":
            figure.layout[axis].scaleanchor = "x" + axis.removeprefix("yaxis")


def attribution_figure(explanations: Sequence[Explanation], titles: Sequence[str]
                       ) -> go.Figure:
    """Rows: METHODS; columns: models (explanations, titled `titles`). Each row shares one
    symmetric diverging colour scale, so the models' maps of a method compare."""
    limits = shared_limits(list(explanations))
    rows, cols = len(METHODS), len(explanations)
    figure = make_subplots(rows, cols, column_titles=list(titles),
                           row_titles=list(METHODS.values()), horizontal_spacing=0.02,
                           vertical_spacing=0.02)
    for r, name in enumerate(METHODS, start=1):
        bar = dict(len=1 / rows * 0.9, y=1 - (r - 0.5) / rows, thickness=10, x=1.0,
                   tickformat=".2g")
        for c, explanation in enumerate(explanations, start=1):
            figure.add_trace(_heatmap(explanation.maps[name], colorscale=DIVERGING,
                                      zmin=-limits[name], zmax=limits[name], zmid=0.0,
                                      showscale=c == cols, colorbar=bar), row=r, col=c)
    figure.update_annotations(font_size=12)
    for annotation in figure.layout.annotations:
        if annotation.textangle == 90:  # row titles: to the left, out of the colour bars' way
            annotation.update(x=-0.01, xanchor="right", textangle=-90)
    _square_axes(figure)
    figure.update_layout(height=rows * MAP_PX + 40, width=cols * MAP_PX + 180,
                         margin=dict(l=40, r=10, t=30, b=10))
    return figure


def adversarial_figure(original: np.ndarray, attacked: np.ndarray) -> go.Figure:
    """Three panels: the digit (28, 28), the perturbation (attacked - original, amplified to
    the full colour range of +-its largest change) and the attacked digit."""
    change = np.asarray(attacked) - np.asarray(original)
    scale = float(np.abs(change).max()) or 1.0
    figure = make_subplots(1, 3, horizontal_spacing=0.03, subplot_titles=(
        "Your digit", f"Change (amplified: full colour = ±{scale:.2f})", "What the model gets"))
    figure.add_trace(_heatmap(original, colorscale=GREYS, zmin=0, zmax=1, showscale=False),
                     row=1, col=1)
    figure.add_trace(_heatmap(change, colorscale=DIVERGING, zmin=-scale, zmax=scale,
                              showscale=False), row=1, col=2)
    figure.add_trace(_heatmap(attacked, colorscale=GREYS, zmin=0, zmax=1, showscale=False),
                     row=1, col=3)
    figure.update_annotations(font_size=12)
    _square_axes(figure)
    figure.update_layout(height=MAP_PX + 70, width=3 * (MAP_PX + 40),
                         margin=dict(l=5, r=5, t=30, b=5))
    return figure
