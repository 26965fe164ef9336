"""The autodiff playground's views: DOT text, plotly figures and markdown built from data."""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np
import plotly.graph_objects as go

from engine.autodiff.explore import DescentPath, GradientCheck
from engine.autodiff.expr import FormulaError
from engine.autodiff.graph import Graph, Node, fmt
from ui.figures.charts import styled

VARIABLE_FILL, OP_FILL, CONST_FILL, OUTPUT_FILL = "#dbeafe", "#f3f4f6", "#ffffff", "#dcfce7"
CURRENT_FILL, CURRENT_EDGE, INPUT_EDGE = "#fde68a", "#d97706", "#2563eb"

OP_SYMBOLS = {"*": "×", "/": "÷", "neg": "−x", "**": "xⁿ"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def node_label(node: Node, grad: tuple[np.ndarray, bool] | None = None) -> str:
    """Up to three lines: what the node is, its value, and `grad` (the gradient the backward
    walk has brought it so far, and whether that is final), if it has been reached."""
    if node.op in ("input", "const"):
        title = node.name
    else:
        title = f"{node.name} = {OP_SYMBOLS.get(node.op, node.op)}"
    lines = [title, f"value {fmt(node.value)}"]
    if grad is not None:
        lines.append(f"grad {fmt(grad[0])}" if grad[1] else f"grad so far {fmt(grad[0])}")
    return "\\n".join(_escape(line) for line in lines)


# Graphs deeper than this are wrapped into rows of ROW_LENGTH levels, read like text.
ROW_LENGTH = 5
WRAP_DEPTH = 8


def depths(graph: Graph) -> list[int]:
    """Each node's distance from the inputs: the longest path of edges reaching it."""
    depth = [0] * len(graph.nodes)
    for src, dst in sorted(graph.edges, key=lambda edge: edge[1]):  # nodes are in topological order
        depth[dst] = max(depth[dst], depth[src] + 1)
    return depth


def rows(graph: Graph) -> list[int] | None:
    """The row of each node when the graph is too deep for one row (a long chain would shrink
    to dots), else None."""
    depth = depths(graph)
    if max(depth, default=0) <= WRAP_DEPTH:
        return None
    return [d // ROW_LENGTH for d in depth]


def drawn_names(graph: Graph, row: list[int] | None) -> dict[tuple[int, int], str]:
    """{(node id, row): DOT name} of every box drawn. In a wrapped graph a variable or constant
    used in other rows is drawn again in each of them, instead of long edges across the rows."""
    if row is None:
        return {(n.id, 0): f"n{n.id}" for n in graph.nodes}
    names = {(n.id, row[n.id]): f"n{n.id}" for n in graph.nodes}
    for src, dst in graph.edges:
        if graph.nodes[src].op in ("input", "const") and row[src] != row[dst]:
            names.setdefault((src, row[dst]), f"n{src}r{row[dst]}")
    return names


def layout_lines(names: dict[tuple[int, int], str], wrapped: bool) -> list[str]:
    """DOT lines that place the boxes: left to right in one row, or in rows stacked top to
    bottom, each row's first box under the one above (invisible edges hold them there)."""
    if not wrapped:
        return ['  rankdir=LR; bgcolor="transparent";']
    members: dict[int, list[str]] = {}
    for (_, r), name in names.items():
        members.setdefault(r, []).append(name)
    lines = ['  rankdir=TB; bgcolor="transparent"; ranksep=0.35; nodesep=0.25;']
    lines += [f"  {{rank=same; {' '.join(boxes)}}}" for boxes in members.values()]
    starts = [boxes[0] for _, boxes in sorted(members.items())]
    lines += [f"  {a} -> {b} [style=invis, weight=20];" for a, b in pairwise(starts)]
    return lines


def node_attributes(graph: Graph, node: Node, grad: tuple[np.ndarray, bool] | None,
                    current: int | None, current_inputs: set[int]) -> str:
    """The DOT attributes of `node`'s box: label, fill, and the step-through's highlight."""
    fill = {"input": VARIABLE_FILL, "const": CONST_FILL}.get(node.op, OP_FILL)
    if node.id == graph.root:
        fill = OUTPUT_FILL
    attrs = [f'label="{node_label(node, grad)}"', f'fillcolor="{fill}"']
    if node.id == current:
        attrs += [f'fillcolor="{CURRENT_FILL}"', f'color="{CURRENT_EDGE}"', "penwidth=3"]
    elif node.id in current_inputs:
        attrs += [f'color="{INPUT_EDGE}"', "penwidth=2"]
    if node.op == "const":
        attrs.append('style="rounded,dashed"')
    return ", ".join(attrs)


def graph_dot(graph: Graph, current: int | None = None,
              grads: dict[int, tuple[np.ndarray, bool]] | None = None) -> str:
    """Graphviz DOT of the computation graph, inputs first, output last.

    `current` (a node id) is highlighted with its inputs' edges, for the backprop step-through;
    `grads` ({node id: (gradient, final)}, see `gradients_after`) are the gradients to show
    (default: every node's final gradient).
    """
    if grads is None:
        grads = {n.id: (n.grad, True) for n in graph.nodes if n.grad is not None}
    current_inputs = {src for src, dst in graph.edges if dst == current}
    row = rows(graph)
    names = drawn_names(graph, row)
    lines = [
        "digraph G {",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [color="#6b7280", arrowsize=0.7];',
        *layout_lines(names, row is not None),  # after the defaults: it names the boxes
    ]
    for (node_id, _), name in names.items():
        node = graph.nodes[node_id]
        attributes = node_attributes(graph, node, grads.get(node_id), current, current_inputs)
        lines.append(f"  {name} [{attributes}];")
    for src, dst in graph.edges:
        attrs = [f'color="{INPUT_EDGE}"', "penwidth=2.5"] if dst == current else []
        source = f"n{src}" if row is None else names.get((src, row[dst]), f"n{src}")
        if row is not None and source == f"n{src}" and row[src] != row[dst]:
            attrs += ["constraint=false", "weight=0"]  # the invisible edges place the rows
        lines.append(f"  {source} -> n{dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines)


def gradient_table(check: GradientCheck) -> list[dict[str, str]]:
    """Rows for st.dataframe: one per variable, the three gradients and the differences."""
    return [
        {
            "variable": v,
            "our engine": f"{check.ours[v]:.10g}",
            "jax.grad": f"{check.jax[v]:.10g}",
            "central differences": f"{check.differences[v]:.10g}",
            "|ours − jax|": f"{abs(check.ours[v] - check.jax[v]):.1e}",
            "|ours − differences|": f"{abs(check.ours[v] - check.differences[v]):.1e}",
        }
        for v in check.variables
    ]


def descent_figure(xs: np.ndarray, ys: np.ndarray, z: np.ndarray, path: DescentPath,
                   names: tuple[str, str]) -> go.Figure:
    """Contour of f over the grid (z indexed [y, x]) with the descent path (k, 2) on top."""
    fig = go.Figure([
        go.Contour(x=xs, y=ys, z=z, colorscale="Viridis", ncontours=30,
                   colorbar=dict(title="f", thickness=12),
                   hovertemplate=f"{names[0]}=%{{x:.3g}}<br>{names[1]}=%{{y:.3g}}<br>"
                                 "f=%{z:.4g}<extra></extra>"),
        go.Scatter(x=path.points[:, 0], y=path.points[:, 1], mode="lines+markers",
                   name="descent path", line=dict(color="white", width=2),
                   marker=dict(size=5, color="#f97316"),
                   customdata=np.column_stack([np.arange(len(path.values)), path.values]),
                   hovertemplate="step %{customdata[0]}<br>f=%{customdata[1]:.4g}<extra></extra>"),
        go.Scatter(x=path.points[:1, 0], y=path.points[:1, 1], mode="markers", name="start",
                   marker=dict(size=12, color="white", line=dict(color="black", width=2))),
    ])
    fig.update_xaxes(title=names[0])
    fig.update_yaxes(title=names[1])
    return styled(fig, "Gradient descent on f", height=460)


def descent_values_figure(path: DescentPath) -> go.Figure:
    """f after each descent step: it should go down if the step size is right."""
    fig = go.Figure(go.Scatter(x=np.arange(len(path.values)), y=path.values, mode="lines+markers",
                               line=dict(color="#f97316")))
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="f")
    return styled(fig, "f along the path", height=460)


# Every ASCII punctuation mark Streamlit's markdown could read as formatting (CommonMark lets a
# backslash escape any of them): `__import__` must not turn bold.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape_markdown(text: str) -> str:
    """`text` shown literally by st.markdown / st.error."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def formula_error_markdown(error: FormulaError) -> str:
    """The error in markdown: the reason and the part of the formula at fault, both literal."""
    text = f"**That formula can't be used:** {escape_markdown(error.reason)}"
    if error.column is not None and error.snippet:
        snippet = (f"`{error.snippet}`" if "`" not in error.snippet
                   else escape_markdown(error.snippet))
        text += f" (column {error.column}: {snippet})"
    return text


def kink_note(check: GradientCheck) -> str:
    """Plain words for the variables along which f has a kink at this point ("" if none)."""
    if not check.kinks:
        return ""
    slopes = "; ".join(f"along {v}, slope {left:.4g} on the left and {right:.4g} on the right"
                       for v, (left, right) in check.kinks.items())
    return (f"**f has a kink here** ({slopes}), so it has no single gradient at this point. "
            "Any slope between the two sides is a valid *subgradient*, and each tool picks its "
            "own: our engine and JAX use a fixed rule (e.g. relu'(0) = 0), while central "
            "differences average the two sides. Their disagreement here is expected, not a bug; "
            "move the point off the kink to compare them.")


def overfit_bars_figure(probabilities: np.ndarray, label: int, title: str) -> go.Figure:
    """The net's probability (10,) of each digit, the image's own label in its own colour."""
    names = [str(d) for d in range(len(probabilities))]
    others = [d for d in range(len(probabilities)) if d != label]
    fig = go.Figure([
        go.Bar(x=[names[d] for d in others], y=probabilities[others], name="other digits",
               marker_color="#9ecae1"),
        go.Bar(x=[names[label]], y=[probabilities[label]], name=f"its label ({label})",
               marker_color="#d62728"),
    ])
    fig.update_traces(texttemplate="%{y:.0%}", textposition="outside")
    fig.update_xaxes(title="digit", type="category", categoryorder="array", categoryarray=names)
    fig.update_yaxes(title="probability", range=[0, 1.15])
    return styled(fig, title)
