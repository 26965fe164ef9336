"""The CNN room's "What a unit wants" tab, and the session memo the inside views share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine import actmax
from engine.model import Model
from ui.charts import styled, tile

MARGIN = 3  # pixels shown around a filter's receptive field
CLASSES = "The 10 classes"


def kept(key: str, model: Model, choice: Any, compute: Callable[[], Any]) -> Any:
    """compute() once per model and choice: kept in the session under `key`, so a rerun (any
    widget) does not redo seconds of work, and a new model or choice replaces it."""
    memo = st.session_state.get(key)
    if memo is not None and memo[0] is model and memo[1] == choice:
        return memo[2]
    value = compute()
    st.session_state[key] = (model, choice, value)
    return value


def unit_grid_figure(images: np.ndarray, captions: list[str], columns: int, title: str
                     ) -> go.Figure:
    """Images (n, h, w) in [0, 1], white on black, in rows of `columns`, each captioned above."""
    n, h, w = images.shape
    gap = max(2, h // 3)
    fig = go.Figure(go.Heatmap(z=tile(images, columns, gap=gap), colorscale="gray", zmin=0,
                               zmax=1, showscale=False, hoverinfo="skip"))
    for i, caption in enumerate(captions):
        r, c = divmod(i, columns)
        fig.add_annotation(x=c * (w + gap) + (w - 1) / 2, y=r * (h + gap) - 0.5, text=caption,
                           showarrow=False, yanchor="bottom", font=dict(size=10))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    rows = -(-n // columns)
    return styled(fig, title, height=80 + rows * 110)


def centre_crop(images: np.ndarray, side: int) -> np.ndarray:
    """The central side x side pixels of images (n, 28, 28), around the map centre's pixel."""
    start = max(0, 14 - side // 2)
    return images[:, start:start + side, start:start + side]


def show_unit_wants(model: Model) -> None:
    """Pick a group of units (a block's filters, or the classes): for each, the image that
    excites it most, grown by gradient ascent from the same faint noise."""
    st.markdown("What does a unit respond to? Start from faint noise and let `jax.grad` push "
                "every pixel, step after step, towards whatever raises **one unit's** score: a "
                "filter's response at the centre of its map, or a class's score. Small random "
                "shifts, a cost for ink and a cost for jagged edges keep the picture readable. "
                "The same start and seed for every unit; recomputed for the current model.")
    spec = model.architecture
    groups = {f"Block {block + 1}: its {f} filters": block
              for block, f in enumerate(spec.filters)}
    groups[CLASSES] = None
    block = groups[st.radio("Units", list(groups), horizontal=True, key="cnn_actmax_group")]
    with st.spinner("Growing an image for each unit…"):
        images, starts, ends = kept("cnn_actmax", model, block,
                                    lambda: actmax.what_units_want(model, block))
    if block is None:
        captions = [f"{i}: {s:.1f}→{e:.1f}" for i, (s, e) in enumerate(zip(starts, ends,
                                                                           strict=True))]
        figure = unit_grid_figure(images, captions, 10, "What each class's score wants")
        note = "Each class's score (its logit), on the start image → on its own image."
    else:
        side = actmax.receptive_field(spec, block)
        captions = [f"{i}: {e:.1f}" for i, e in enumerate(ends)]
        figure = unit_grid_figure(centre_crop(images, side + 2 * MARGIN), captions, 16,
                                  f"What each filter of block {block + 1} wants (the "
                                  f"{side}x{side} pixels it sees, and {MARGIN} around)")
        note = (f"A unit of block {block + 1} sees {side}x{side} input pixels; nothing outside "
                "them changes its score, so only the centre of each image grew. Under each: "
                f"its response, {np.mean(starts):.2f} on average on the start image.")
    st.plotly_chart(figure, key="cnn_actmax_chart", width="stretch")
    st.caption(note)
