"""A computation graph exported for drawing: nodes, edges, backward order, chain-rule steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.autodiff.tensor import Grads, Tensor

# The local derivative of each op with respect to each of its inputs, in words, for the
# step-through view: {a} and {b} stand for the first and second input, {y} for the output.
LOCAL_RULES: dict[str, tuple[str, ...]] = {
    "+": ("1", "1"),
    "*": ("{b}", "{a}"),
    "/": ("1/{b}", "-{a}/{b}²"),
    "**": ("{b}·{a}^({b}-1)", "{y}·ln {a}"),
    "neg": ("-1",),
    "exp": ("exp({a})",),
    "log": ("1/{a}",),
    "tanh": ("1 - tanh²({a})",),
    "sigmoid": ("σ({a})·(1 - σ({a}))",),
    "relu": ("1 if {a} > 0 else 0",),
    "sin": ("cos({a})",),
    "cos": ("-sin({a})",),
    "sqrt": ("1/(2·√{a})",),
    "abs": ("sign({a})",),
    "sum": ("1",),
}


@dataclass(frozen=True)
class Node:
    """One tensor of the graph. `grad` is None for constants (they need no gradient)."""

    id: int
    name: str  # short name used in the chain-rule text: a variable's name, or v1, v2, ...
    op: str  # "input" for a variable, "const" for a constant, else the op's name
    label: str  # what the node computes, e.g. the formula text it came from
    shape: tuple[int, ...]
    value: np.ndarray
    grad: np.ndarray | None


@dataclass(frozen=True)
class ChainStep:
    """What one backward closure adds to one of its inputs' gradients.

    d(root)/d(input) += d(root)/d(node) * d(node)/d(input)  ("upstream" times "local").
    For non-scalar tensors `local` is the local vector-Jacobian product with a seed of ones.
    """

    node: int
    input: int
    upstream: np.ndarray
    local: np.ndarray
    contribution: np.ndarray
    rule: str  # the local derivative in words, e.g. "1 - tanh²(v4)"
    text: str  # the whole product with numbers, e.g. "∂f/∂a += ∂f/∂c · ∂c/∂a = 0.42 · 3 = 1.26"


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order (inputs first), edges (input id, output id), and the order in
    which backward visits the nodes (output first) with each visit's chain-rule steps."""

    nodes: list[Node]
    edges: list[tuple[int, int]]
    backward_order: list[int]
    steps: dict[int, list[ChainStep]]
    root: int


def drawing_order(root: Tensor) -> list[Tensor]:
    """Every tensor that feeds `root`, constants included, each after its inputs."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((t, False) for t in reversed(node.inputs) if id(t) not in seen)
    return order


def export_graph(root: Tensor, root_name: str = "f") -> Graph:
    """The graph under `root` with values, gradients and chain steps.

    Runs `root.backward()` (gradients are recomputed from scratch, so running it again changes
    nothing) and records each visit of the backward walk as it happens.
    """
    tensors = drawing_order(root)
    ids = {id(t): i for i, t in enumerate(tensors)}
    names = {id(t): node_name(t, i, t is root, root_name) for i, t in enumerate(tensors)}
    steps = {
        ids[id(node)]: chain_steps(node, sent, ids, names, root_name)
        for node, sent in root.backward_visits()
    }
    nodes = [
        Node(
            id=ids[id(t)],
            name=names[id(t)],
            op=t.op or ("input" if t.requires_grad else "const"),
            label=t.label,
            shape=t.shape,
            value=t.data,
            grad=t.grad if t.requires_grad else None,
        )
        for t in tensors
    ]
    edges = sorted({(ids[id(i)], ids[id(t)]) for t in tensors for i in t.inputs})
    return Graph(nodes, edges, list(steps), steps, ids[id(root)])


def node_name(tensor: Tensor, index: int, is_root: bool, root_name: str) -> str:
    """A variable keeps its name, a constant shows its value, the output is `root_name`, every
    other node is v<index>."""
    if is_root:
        return root_name
    if not tensor.op and tensor.requires_grad and tensor.label:
        return tensor.label
    if not tensor.op and tensor.data.size == 1:
        return fmt(tensor.data)
    return f"v{index}"


def per_input(node: Tensor, sent: Grads) -> dict[int, tuple[Tensor, np.ndarray]]:
    """What `node` sent to each distinct input that needs a gradient, keyed by id (an input
    used twice, as in x*x, gets the sum of both)."""
    totals: dict[int, tuple[Tensor, np.ndarray]] = {}
    for tensor, grad in zip(node.inputs, sent, strict=True):
        if grad is not None:
            earlier = totals.get(id(tensor))
            totals[id(tensor)] = (tensor, grad if earlier is None else earlier[1] + grad)
    return totals


def chain_steps(node: Tensor, sent: Grads, ids: dict[int, int],
                names: dict[int, str], root_name: str) -> list[ChainStep]:
    """The chain-rule products that `node`'s visit of the backward walk sent to its inputs.

    `local` is what the op sends for a gradient of ones (for a tensor op: the vector-Jacobian
    product with ones), `contribution` what it sent for the node's actual gradient.
    """
    upstream = node.grad
    locals_ = per_input(node, node.input_gradients(np.ones_like(node.data)))
    steps = []
    for key, (parent, contribution) in per_input(node, sent).items():
        local = locals_[key][1]
        out_name, in_name = names[id(node)], names[id(parent)]
        text = (
            f"∂{root_name}/∂{in_name} += ∂{root_name}/∂{out_name} · ∂{out_name}/∂{in_name}"
            f" = {fmt(upstream)} · {fmt(local)} = {fmt(contribution)}"
        )
        steps.append(ChainStep(ids[id(node)], ids[id(parent)], upstream, local, contribution,
                               local_rule(node, parent, names), text))
    return steps


def local_rule(node: Tensor, parent: Tensor, names: dict[int, str]) -> str:
    """d node / d parent in words with the inputs' names, e.g. "1 - tanh²(v4)" ("" if unknown)."""
    rules = LOCAL_RULES.get(node.op, ())
    if not rules:
        return ""
    inputs = node.inputs
    slots = {"a": names.get(id(inputs[0]), ""), "y": names.get(id(node), "")}
    slots["b"] = names.get(id(inputs[-1]), "")
    positions = [i for i, t in enumerate(inputs) if t is parent]
    return " + ".join(rules[min(i, len(rules) - 1)].format(**slots) for i in positions)


def fmt(x: np.ndarray) -> str:
    """A number for the step text: 4 significant digits, or the shape for a tensor."""
    x = np.asarray(x)
    if x.size == 1:
        return f"{float(x.reshape(())):.4g}"
    return f"[{'×'.join(map(str, x.shape))} tensor]"


def gradients_after(graph: Graph, step: int) -> dict[int, tuple[np.ndarray, bool]]:
    """{node id: (its gradient so far, whether it is final)} after the first `step` visits of
    the backward walk: the output's gradient (1) plus everything those visits sent.

    Nodes not reached yet are absent. A gradient is final once every node it feeds was visited.
    """
    visited = set(graph.backward_order[:step])
    sums: dict[int, np.ndarray] = {graph.root: np.ones_like(graph.nodes[graph.root].value)}
    for node in graph.backward_order[:step]:
        for chain in graph.steps[node]:
            sums[chain.input] = sums.get(chain.input, 0) + chain.contribution
    consumers: dict[int, set[int]] = {}
    for src, dst in graph.edges:
        consumers.setdefault(src, set()).add(dst)
    return {node: (grad, consumers.get(node, set()) <= visited) for node, grad in sums.items()}
