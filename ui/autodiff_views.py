"""The autodiff playground's drawings: pure functions, data in, DOT text or plotly figure out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from engine.autodiff.explore import DescentPath, GradientCheck
from engine.autodiff.graph import Graph, Node, fmt
from ui.charts import styled

VARIABLE_FILL, OP_FILL, CONST_FILL, OUTPUT_FILL = "#dbeafe", "#f3f4f6", "#ffffff", "#dcfce7"
CURRENT_FILL, CURRENT_EDGE, INPUT_EDGE = "#fde68a", "#d97706", "#2563eb"

OP_SYMBOLS = {"*": "×", "/": "÷", "-": "−", "neg": "−x", "**": "xⁿ"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def node_label(node: Node) -> str:
    """Three lines: what the node is, its value, its gradient (graphviz record-free label)."""
    if node.op in ("input", "const"):
        title = node.name
    else:
        title = f"{node.name} = {OP_SYMBOLS.get(node.op, node.op)}"
    lines = [title, f"value {fmt(node.value)}"]
    if node.grad is not None:
        lines.append(f"grad {fmt(node.grad)}")
    return "\\n".join(_escape(line) for line in lines)


def graph_dot(graph: Graph, current: int | None = None) -> str:
    """Graphviz DOT of the computation graph, inputs on the left, output on the right.

    `current` (a node id) is highlighted with its inputs' edges, for the backprop step-through.
    """
    current_inputs = {src for src, dst in graph.edges if dst == current}
    lines = [
        "digraph G {",
        '  rankdir=LR; bgcolor="transparent";',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [color="#6b7280", arrowsize=0.7];',
    ]
    for node in graph.nodes:
        fill = {"input": VARIABLE_FILL, "const": CONST_FILL}.get(node.op, OP_FILL)
        if node.id == graph.root:
            fill = OUTPUT_FILL
        attrs = [f'label="{node_label(node)}"', f'fillcolor="{fill}"']
        if node.id == current:
            attrs += [f'fillcolor="{CURRENT_FILL}"', f'color="{CURRENT_EDGE}"', "penwidth=3"]
        elif node.id in current_inputs:
            attrs += [f'color="{INPUT_EDGE}"', "penwidth=2"]
        if node.op == "const":
            attrs.append('style="rounded,dashed"')
        lines.append(f"  n{node.id} [{', '.join(attrs)}];")
    for src, dst in graph.edges:
        style = f' [color="{INPUT_EDGE}", penwidth=2.5]' if dst == current else ""
        lines.append(f"  n{src} -> n{dst}{style};")
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
