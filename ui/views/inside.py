"""The rooms' "What a unit wants" tab (both rooms) and the CNN room's "Convolution, cell by
cell"."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine import cnn
from engine.explain import actmax, conv_view
from engine.models.model import Model
from ui.figures.charts import styled, tile
from ui.lazy import asked_for, kept
from ui.state import remembered

MARGIN = 3  # pixels shown around a filter's receptive field
CLASSES = "The 10 classes"


def as_sentence(error: Exception) -> str:
    """An engine error ("cell (4, 0) is outside ...") as a sentence for the learner."""
    text = str(error)
    return f"{text[:1].upper()}{text[1:]}."


MAX_INDEX = 99_999


def whole_numbers(cells: list, fields: dict[str, tuple[int, str]]) -> list[int]:
    """One whole-number input per cell, {label: (default, key)}: the numbers entered. Any
    number from 0 to MAX_INDEX may be typed; the engine says which ones exist. (Bounds also
    keep out what no index can be: Streamlit reads a NaN in an unbounded int input with int().)
    """
    return [int(cell.number_input(label, min_value=0, max_value=MAX_INDEX, step=1,
                                  key=remembered(key, default)))
            for cell, (label, (default, key)) in zip(cells, fields.items(), strict=False)]


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


FFNN_UNITS = 64  # the first units of a feed-forward hidden layer shown (a layer may have 1,024)


def unit_groups(model: Model) -> dict[str, int | None]:
    """{radio label: block} the view offers: each CNN block's filters, or each feed-forward
    hidden layer from the second on (a first-layer unit wants its own weights, shown live),
    and the classes (block None)."""
    if model.family.spatial:
        groups = {f"Block {block + 1}: its {f} filters": block
                  for block, f in enumerate(model.architecture.filters)}
    else:
        groups = {f"Hidden layer {layer + 1}: " + (f"its {n} units" if n <= FFNN_UNITS else
                                                   f"its first {FFNN_UNITS} of {n} units"): layer
                  for layer, n in enumerate(model.architecture.hidden) if layer >= 1}
    return groups | {CLASSES: None}


def filter_grid(model: Model, block: int, images: np.ndarray, starts: np.ndarray,
                ends: np.ndarray) -> tuple[go.Figure, str]:
    """(the grid, a note) for a CNN block's filters: each image cropped to what the unit sees."""
    side = actmax.receptive_field(model.architecture, block)
    captions = [f"{i}: {e:.1f}" for i, e in enumerate(ends)]
    figure = unit_grid_figure(centre_crop(images, side + 2 * MARGIN), captions, 16,
                              f"What each filter of block {block + 1} wants (the "
                              f"{side}x{side} pixels it sees, and {MARGIN} around)")
    return figure, (f"A unit of block {block + 1} sees {side}x{side} input pixels; nothing "
                    "outside them changes its score, so only the centre of each image grew. "
                    f"Under each: its response, {np.mean(starts):.2f} on average on the start "
                    "image.")


def dense_grid(layer: int, images: np.ndarray, starts: np.ndarray, ends: np.ndarray
               ) -> tuple[go.Figure, str]:
    """(the grid, a note) for a feed-forward hidden layer's units: whole images."""
    captions = [f"{i}: {e:.1f}" for i, e in enumerate(ends)]
    figure = unit_grid_figure(images, captions, 8, f"What each unit of hidden layer "
                              f"{layer + 1} wants")  # whole 28x28 images: 8 a row stay legible
    return figure, (f"A unit of hidden layer {layer + 1} sees every pixel, through the layers "
                    "before it. Under each: its z (before the activation), "
                    f"{np.mean(starts):.2f} on average on the start image. An image that stays "
                    "dark belongs to a unit that ink raises little (a score near 0): the costs "
                    "of ink outweigh what it would gain.")


def show_unit_wants(model: Model, key: str) -> None:
    """Pick a group of units (a CNN block's filters, a feed-forward hidden layer's units, or the
    classes): for each, the image that excites it most, grown by gradient ascent from the same
    faint noise. key: the room's widget-key prefix ("ff", "cnn")."""
    st.markdown("What does a unit respond to? Start from faint noise and let `jax.grad` push "
                "every pixel, step after step, towards whatever raises **one unit's** score: a "
                "filter's response at the centre of its map, a hidden unit's input, or a "
                "class's score. Small random shifts, a cost for ink and a cost for jagged edges "
                "keep the picture readable. The same start and seed for every unit; recomputed "
                "for the current model.")
    groups = unit_groups(model)
    if not model.family.spatial and len(groups) == 1:
        st.caption("With two or more hidden layers, the units of the second and deeper layers "
                   "are offered here too (a first-layer unit wants its own weights: see them "
                   "in the live panel while training).")
    block = groups[st.radio("Units", list(groups), horizontal=True,
                            key=remembered(f"{key}_actmax_group", next(iter(groups))))]
    if not asked_for(f"{key}_actmax", "Grow the images (a few seconds)"):
        return
    with st.spinner("Growing an image for each unit…"):
        images, starts, ends = kept(f"{key}_actmax", model, block, lambda: actmax.what_units_want(
            model, block, first=None if model.family.spatial else FFNN_UNITS))
    if block is None:
        captions = [f"{i}: {s:.1f}→{e:.1f}" for i, (s, e) in enumerate(zip(starts, ends,
                                                                           strict=True))]
        figure = unit_grid_figure(images, captions, 10, "What each class's score wants")
        note = "Each class's score (its logit), on the start image → on its own image."
    elif model.family.spatial:
        figure, note = filter_grid(model, block, images, starts, ends)
    else:
        figure, note = dense_grid(block, images, starts, ends)
    st.plotly_chart(figure, key=f"{key}_actmax_chart", width="stretch")
    st.caption(note)


def small_matrix_figure(matrix: np.ndarray, title: str, *, signed: bool = True,
                        box: tuple[int, int, int] | None = None) -> go.Figure:
    """A heatmap of matrix (h, w), row 0 on top; numbers written in when it is small; box
    (top, left, side) outlined in black. Signed: red +, blue -; else grey, white ink."""
    limit = float(np.abs(matrix).max()) or 1.0
    small = matrix.size <= 49
    fig = go.Figure(go.Heatmap(
        z=matrix, colorscale="RdBu_r" if signed else "gray", zmin=-limit if signed else 0,
        zmax=limit, showscale=False, texttemplate="%{z:.2f}" if small else None,
        textfont=dict(size=15),
        hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra></extra>"))
    if box is not None:
        top, left, side = box
        fig.add_shape(type="rect", x0=left - 0.5, x1=left + side - 0.5, y0=top - 0.5,
                      y1=top + side - 0.5, line=dict(color="black", width=2))
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    styled(fig, title, height=260)
    fig.update_layout(title_font_size=13)
    return fig


def show_forward_cell(model: Model, image: np.ndarray) -> int | None:
    """Pick a first-block feature map cell: its receptive field, the kernel, the dot product.
    Returns the chosen filter (None when the choice is out of range)."""
    st.markdown("#### Forward: one number of a feature map")
    row, col, filter_ = whole_numbers(st.columns(3), {
        "Row": (14, "cnn_conv_row"), "Column": (14, "cnn_conv_col"),
        "Filter": (0, "cnn_conv_filter")})
    try:
        cell = conv_view.forward_cell(model, image, row, col, filter_)
    except IndexError as error:
        st.warning(as_sentence(error))
        return None
    k = len(cell.kernel)
    feature_map = np.asarray(cnn.feature_maps(model.params, image, spec=model.architecture)[0])
    left, middle, right, last = st.columns(4)
    left.plotly_chart(small_matrix_figure(image, "the input, its receptive field", signed=False,
                                          box=(cell.top, cell.left, k)),
                      key="cnn_conv_input", width="stretch")
    middle.plotly_chart(small_matrix_figure(cell.patch, f"patch ({k}x{k})", signed=False),
                        key="cnn_conv_patch", width="stretch")
    right.plotly_chart(small_matrix_figure(cell.kernel, f"kernel of filter {filter_}"),
                       key="cnn_conv_kernel", width="stretch")
    last.plotly_chart(small_matrix_figure(feature_map[:, :, filter_], f"feature map {filter_}",
                                          box=(row, col, 1)),
                      key="cnn_conv_map", width="stretch")
    rows = [" + ".join(f"{p:.2f}×{w:.2f}" for p, w in zip(patch_row, kernel_row, strict=True))
            for patch_row, kernel_row in zip(cell.patch, cell.kernel, strict=True)]
    st.code("z =   " + "\n    + ".join(rows) + f"\n    + bias {cell.bias:.3f}\n  = {cell.z:.4f}"
            f";   relu(z) = {cell.activation:.4f} (the feature map holds "
            f"{feature_map[row, col, filter_]:.4f})", language=None)
    return filter_


def running_sum_figure(cell: conv_view.KernelGradientCell, title: str) -> go.Figure:
    """The sum over output positions, position after position, and jax.grad's value dashed."""
    fig = go.Figure(go.Scatter(y=cell.running_sum(), mode="lines", name="running sum"))
    fig.add_hline(y=cell.jax_value, line_dash="dash", line_color="#d62728",
                  annotation_text="jax.grad")
    fig.update_xaxes(title="output position (row by row)")
    return styled(fig, title, height=260)


def show_kernel_gradient_cell(model: Model, image: np.ndarray, filter_: int, label: int
                              ) -> None:
    """Pick an entry (a, b) of filter_'s kernel: dL/dK as a sum over positions."""
    st.markdown(f"#### Backward: one number of dL/dK, the gradient of filter {filter_}'s kernel")
    a, b = whole_numbers(st.columns(2), {"Kernel row": (1, "cnn_conv_a"),
                                         "Kernel column": (1, "cnn_conv_b")})
    try:
        cell = conv_view.kernel_gradient_cell(model, image, label, a, b, filter_)
    except IndexError as error:
        st.warning(as_sentence(error))
        return
    st.code(f"dL/dK[{a},{b}] = sum over every position (i, j) of x[i+{a}, j+{b}] × dL/dz[i, j]"
            f"\n          = {cell.value:.6g};   jax.grad: {cell.jax_value:.6g} (difference "
            f"{abs(cell.value - cell.jax_value):.1e})", language=None)
    columns = st.columns(4)
    figures = [(cell.pixels, f"x shifted by ({a}, {b})", False),
               (cell.upstream, "upstream dL/dz", True), (cell.products, "products", True)]
    for column, (i, (matrix, title, signed)) in zip(columns, enumerate(figures), strict=False):
        column.plotly_chart(small_matrix_figure(matrix, title, signed=signed),
                            key=f"cnn_conv_grad_{i}", width="stretch")
    columns[3].plotly_chart(running_sum_figure(cell, "the sum, position by position"),
                            key="cnn_conv_running", width="stretch")


def show_input_gradient_cell(model: Model, image: np.ndarray, label: int) -> None:
    """Pick a pixel: dL/dx there as the sum over filters and kernel entries."""
    st.markdown("#### Backward: one pixel of dL/dx, the gradient of the input")
    row, col = whole_numbers(st.columns(2), {"Pixel row": (14, "cnn_conv_pixel_row"),
                                             "Pixel column": (14, "cnn_conv_pixel_col")})
    try:
        cell = conv_view.input_gradient_cell(model, image, label, row, col)
    except IndexError as error:
        st.warning(as_sentence(error))
        return
    st.code(f"dL/dx[{row},{col}] = sum over filters f and kernel entries (a, b) of K[a,b,f] × "
            f"dL/dz[{row}+1-a, {col}+1-b, f]\n            = {cell.value:.6g};   jax.grad: "
            f"{cell.jax_value:.6g} (difference {abs(cell.value - cell.jax_value):.1e})",
            language=None)
    left, middle, right = st.columns(3)
    left.plotly_chart(small_matrix_figure(cell.products.sum(axis=2), "products, summed over "
                                          "the filters, per kernel entry"),
                      key="cnn_conv_pixel_products", width="stretch")
    per_filter = cell.products.sum(axis=(0, 1))
    bars = go.Figure(go.Bar(x=np.arange(len(per_filter)), y=per_filter,
                            marker_color=np.where(per_filter >= 0, "#d62728", "#1f77b4")))
    bars.update_xaxes(title="filter", dtick=1)
    bars.update_layout(title_font_size=13)
    middle.plotly_chart(styled(bars, "products, summed per filter", height=260),
                        key="cnn_conv_pixel_filters", width="stretch")
    right.plotly_chart(small_matrix_figure(cell.gradient, "dL/dx by jax.grad",
                                           box=(row, col, 1)),
                       key="cnn_conv_pixel_map", width="stretch")


def show_conv_cells(model: Model, image: np.ndarray | None) -> None:
    """The tab: the first convolution on one digit (28, 28) in [0, 1] (None: none chosen yet),
    forward then backward."""
    if image is None:
        st.info("Draw a digit above (or follow a test digit) to see the convolution at work.")
        return
    st.markdown("The first convolution, one number at a time, on the digit followed above. "
                "**Forward**: a feature map cell is the input patch under the kernel times "
                "the kernel, summed, plus a bias, then ReLU. **Backward**: one entry of the "
                "kernel's gradient touched every position of the map, so it is a sum over all of "
                "them: the input pixel that entry saw there times the gradient that came back "
                "there. Every number is checked against `jax.grad`.")
    filter_ = show_forward_cell(model, image)
    predicted = int(model.predict_proba(image[None]).argmax())
    label = st.selectbox("Label of the loss (for both gradients below)", range(10),
                         index=predicted, key="cnn_conv_label",
                         help="The loss is the cross-entropy of this digit with this label; "
                              "the model's answer by default.")
    if filter_ is not None:
        show_kernel_gradient_cell(model, image, filter_, label)
    show_input_gradient_cell(model, image, label)
