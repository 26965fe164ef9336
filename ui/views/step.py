"""The feed-forward room's "One step" tab: one training step on a few digits, phase by phase."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.data.mnist import as_float
from engine.explain.step_phases import CELL_KINDS, StepPhases, cell_sum, step_phases
from engine.models.model import Model
from ui.figures.charts import a_digit, styled
from ui.figures.pictures import enlarged
from ui.state import remembered
from ui.views.inside import as_sentence, whole_numbers

PHASES = ("Forward", "Loss", "Backward", "Update")
MAX_CELLS = 50_000  # a heatmap shows the first columns that fit: W1 alone has 784 x H numbers
TOP_TERMS = 8
PICKABLE = 1_000  # the batch is picked among the first test digits (all of the embedded set)


def matrix_figure(matrix: np.ndarray, title: str, *, signed: bool = True) -> go.Figure:
    """A heatmap of matrix (rows, cols), row 0 on top, at most MAX_CELLS numbers (the first
    columns; the title says so when cut); hover gives (row, col) and the value. Signed: red +,
    blue -, white 0."""
    matrix = np.atleast_2d(matrix)
    shown = matrix[:, :max(1, MAX_CELLS // len(matrix))]
    if shown.shape != matrix.shape:
        title += f", columns 0-{shown.shape[1] - 1}"
    limit = float(np.abs(shown).max()) or 1.0
    fig = go.Figure(go.Heatmap(
        z=shown, colorscale="RdBu_r" if signed else "gray_r",
        zmin=-limit if signed else 0, zmax=limit, showscale=False,
        hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    styled(fig, title, height=230)
    fig.update_layout(title_font_size=13)
    return fig


def shape(matrix: np.ndarray) -> str:
    """"(4,784)"."""
    return "(" + ",".join(map(str, matrix.shape)) + ("," if matrix.ndim == 1 else "") + ")"


def draw_row(figures: list[tuple[np.ndarray, str]], key: str) -> None:
    """Heatmaps side by side, one column each."""
    for column, (i, (matrix, title)) in zip(st.columns(len(figures)), enumerate(figures),
                                            strict=True):
        column.plotly_chart(matrix_figure(matrix, title), key=f"{key}_{i}", width="stretch")


def show_forward(phases: StepPhases) -> None:
    st.markdown("#### Forward: each layer multiplies, adds its bias, bends")
    n = len(phases.layers)
    for i, layer in enumerate(phases.layers, start=1):
        a_in = "x" if i == 1 else f"a{i - 1}"
        out = (f"z{i} = logits {shape(layer.z)}" if i == n else
               f"z{i} {shape(layer.z)} -> {phases.activation} -> a{i} {shape(layer.a_out)}")
        st.code(f"{a_in} {shape(layer.a_in)} @ W{i} {shape(layer.w)} + b{i} {shape(layer.b)} "
                f"-> {out}", language=None)
        figures = [(layer.a_in, f"{a_in} {shape(layer.a_in)}"), (layer.w, f"W{i} {shape(layer.w)}"),
                   (layer.z, f"z{i} {shape(layer.z)}")]
        if i < n:
            figures.append((layer.a_out, f"a{i} {shape(layer.a_out)}"))
        draw_row(figures, f"ff_step_forward_{i}")


def show_loss(phases: StepPhases, loss_name: str) -> None:
    st.markdown("#### Loss: how wrong the scores are")
    formula = ("L = mean over the batch of -log p[label]" if loss_name == "cross_entropy" else
               "L = mean over the batch of sum over classes (p - onehot)^2")
    st.code(f"p = softmax(logits) {shape(phases.probabilities)};   {formula}", language=None)
    left, right, numbers = st.columns([2, 2, 1])
    left.plotly_chart(matrix_figure(phases.probabilities, "p = softmax(logits)", signed=False),
                      key="ff_step_probabilities", width="stretch")
    right.plotly_chart(matrix_figure(phases.one_hot, "onehot(labels)", signed=False),
                       key="ff_step_one_hot", width="stretch")
    numbers.metric("Loss (by hand)", f"{phases.loss:.4f}")
    numbers.metric("Loss (the engine, JAX)", f"{phases.loss_jax:.4f}",
                   help="The model's own loss function on the same batch.")


def show_backward(phases: StepPhases, loss_name: str) -> None:
    st.markdown("#### Backward: blame flows from the loss to every weight, last layer first")
    start = ("dL/dlogits = (softmax - onehot) / B" if loss_name == "cross_entropy" else
             "dL/dlogits = p * (g - sum(g p)),  g = 2 (p - onehot) / B")
    st.code(f"delta{len(phases.layers)} = {start}", language=None)
    for i in reversed(range(1, len(phases.layers) + 1)):
        layer = phases.layers[i - 1]
        a_in = "x" if i == 1 else f"a{i - 1}"
        lines = [f"dW{i} {shape(layer.dw)} = {a_in}^T {shape(layer.a_in.T)} @ delta{i} "
                 f"{shape(layer.delta)};   db{i} = sum of delta{i} over the batch"]
        if i > 1:
            lines.append(f"delta{i - 1} = (delta{i} @ W{i}^T) * {phases.activation}'(z{i - 1})")
        st.code("\n".join(lines), language=None)
        draw_row([(layer.delta, f"delta{i} {shape(layer.delta)}"),
                  (layer.dw, f"dW{i} by hand"), (layer.dw_jax, f"dW{i} by jax.grad")],
                 f"ff_step_backward_{i}")
        st.caption(f"Layer {i}: max |by hand - jax.grad| over dW{i} and db{i} = "
                   f"{layer.max_gradient_difference:.2e} (largest |dW{i}| "
                   f"{np.abs(layer.dw_jax).max():.2e}).")


def show_update(phases: StepPhases) -> None:
    st.markdown(f"#### Update: {phases.optimizer}, learning rate {phases.learning_rate:g}")
    st.caption("A model file keeps no optimizer state, so this is the optimizer's **first** "
               "step from a fresh state (for plain SGD: W - lr * dW; for Adam about lr per "
               "weight, in the sign of its gradient). Nothing is saved: the model stays as it is.")
    for i, layer in enumerate(phases.layers, start=1):
        st.code(f"W{i} after = W{i} + step {shape(layer.w)}", language=None)
        draw_row([(layer.w, f"W{i} before"), (layer.w_after - layer.w, "step"),
                  (layer.w_after, f"W{i} after")], f"ff_step_update_{i}")


CELL_NAMES = {"z": "z (forward)", "dw": "dW (backward)", "delta": "delta (backward)"}


def show_cell(phases: StepPhases) -> None:
    """Pick one number (matrix, layer, row, column): the sum that produced it, largest terms
    first."""
    st.markdown("#### One number, and the sum that produced it")
    cells = st.columns(4)
    kind = cells[0].selectbox("Matrix", list(CELL_NAMES), format_func=CELL_NAMES.get,
                              key=remembered("ff_step_cell_kind", next(iter(CELL_NAMES))),
                              help="\n\n".join(CELL_KINDS.values()))
    layer, row, col = whole_numbers(cells[1:], {
        "Layer": (1, "ff_step_cell_layer"), "Row": (0, "ff_step_cell_row"),
        "Column": (0, "ff_step_cell_col")})
    try:
        cell = cell_sum(phases, kind, layer, row, col)
    except IndexError as error:
        st.warning(as_sentence(error))
        return
    left, right = {"z": ("a_in[row, k]", "W[k, col]"), "dw": ("a_in[b, row]", "delta[b, col]"),
                   "delta": ("delta_next[row, k]", "W_next[col, k]")}[kind]
    factor = "" if kind != "delta" else f", times {phases.activation}'(z) = {cell.factor:.4g}"
    offset = f" + bias {cell.offset:.4g}" if kind == "z" else ""
    top = cell.top(TOP_TERMS)
    st.markdown(f"**{cell.value:.6g}** = the sum of {len(cell.terms)} products "
                f"{left} x {right}{offset}{factor}. "
                + (f"The {len(top)} largest:" if len(top) < len(cell.terms) else "Each one:"))
    table = pd.DataFrame({"k" if kind != "dw" else "b": top, left: cell.left[top],
                          right: cell.right[top], "product": cell.terms[top]})
    significant = st.column_config.NumberColumn(format="%.4g")  # -0.00006 would read as 0
    st.dataframe(table, hide_index=True, column_config={left: significant, right: significant,
                                                          "product": significant})
    rest = cell.terms.sum() - cell.terms[top].sum()
    total = (cell.terms.sum() + cell.offset) * cell.factor
    st.caption(f"The other {max(len(cell.terms) - len(top), 0)} products add up to {rest:.4g}; "
               f"all together{offset}{factor}: {total:.6g}.")


YOUR_DRAWING = -1  # the batch picker's item for the digit drawn in the Sketch tab


def batch_options(labels: np.ndarray) -> dict[int, str]:
    """{YOUR_DRAWING: "your drawing", test index: "#12: a 3", ...} for the batch picker."""
    return {YOUR_DRAWING: "your drawing (Sketch tab)"} | {
        i: f"#{i}: {a_digit(int(label))}" for i, label in enumerate(labels)}


def the_batch(model: Model, chosen: list[int], images: np.ndarray, labels: np.ndarray,
              drawing: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(images (B, 28, 28) in [0, 1], labels (B,)) of the picked items: test digits by index,
    and the drawing (28, 28) with the label the learner gives it (asked for here, the model's
    reading by default) when picked. Says so when the drawing is picked but none is drawn, and
    leaves it out."""
    tests = [i for i in chosen if i != YOUR_DRAWING]
    batch, targets = as_float(images[tests]), labels[tests]
    if YOUR_DRAWING not in chosen:
        return batch, targets
    if drawing is None:
        st.info("Draw a digit in the Sketch tab to use it here.")
        return batch, targets
    left, right, _ = st.columns([1, 3, 3])
    left.image(enlarged(drawing, 3), caption="your drawing")
    label = right.selectbox("Label of your drawing (what it should be read as)", range(10),
                            index=int(model.predict_proba(drawing[None]).argmax()),
                            key="ff_step_drawing_label")
    return (np.concatenate([batch, np.asarray(drawing, batch.dtype)[None]]),
            np.append(targets, label))


def phase_buttons() -> list[str]:
    """Buttons Forward / Loss / Backward / Update / All; the phases to show (kept across reruns)."""
    cells = st.columns(len(PHASES) + 1)
    for cell, phase in zip(cells, PHASES, strict=False):
        if cell.button(phase, key=f"ff_step_{phase.lower()}", width="stretch"):
            st.session_state["ff_step_phases"] = [phase]
    if cells[-1].button("All", key="ff_step_all", type="primary", width="stretch"):
        st.session_state["ff_step_phases"] = list(PHASES)
    # None shown until one is pressed: the step is computed only then (the tab reruns with
    # every widget in it).
    return st.session_state.setdefault("ff_step_phases", [])


def show_one_step(model: Model, images: np.ndarray, labels: np.ndarray, *, loss_name: str,
                  optimizer: str, learning_rate: float, drawing: np.ndarray | None = None
                  ) -> None:
    """One training step of the room's model on test digits the learner picks, phase by phase.

    images: uint8 (n, 28, 28), labels (n,); loss, optimizer, learning rate: the room's controls.
    drawing: the learner's digit (28, 28) in [0, 1] (None: none drawn), offered in the batch.
    """
    st.markdown("One training step, slowed down: pick a few digits, then step through the "
                "**forward** pass, the **loss**, the **backward** pass (every gradient written "
                "by hand beside `jax.grad`'s) and the **update**. Red is positive, blue negative; "
                "hover a heatmap for its numbers.")
    options = batch_options(labels[:PICKABLE])
    first_of_each = [int(np.flatnonzero(labels[:PICKABLE] == digit)[0]) for digit in (3, 7, 1, 0)
                     if (labels[:PICKABLE] == digit).any()]
    chosen = st.multiselect("The batch (test digits, and your drawing)", list(options),
                            format_func=options.get,
                            key=remembered("ff_step_batch", first_of_each),
                            max_selections=16)
    if drawing is None and YOUR_DRAWING not in chosen:
        st.caption("Draw a digit in the Sketch tab to use it here.")
    batch, targets = the_batch(model, chosen, images, labels, drawing)
    shown = phase_buttons()
    if not len(batch):
        st.warning("The batch is empty: pick at least one digit above.")
        return
    if not shown:
        st.info("Press a phase to take the step, or **All** to see it whole.",
                icon=":material/play_arrow:")
        return
    params = {name: np.asarray(value) for name, value in model.params.items()}
    try:
        phases = step_phases(params, batch, targets, arch=model.architecture,
                             loss_name=loss_name, optimizer=optimizer,
                             learning_rate=learning_rate)
    except ValueError as error:  # a net this view cannot write out (batch norm)
        st.warning(str(error))
        return
    if "Forward" in shown:
        show_forward(phases)
    if "Loss" in shown:
        show_loss(phases, loss_name)
    if "Backward" in shown:
        show_backward(phases, loss_name)
    if "Update" in shown:
        show_update(phases)
    show_cell(phases)
