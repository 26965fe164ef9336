"""Whole graphs: shared nodes (diamonds), repeated backward, a small MLP against jax.grad, and
the exported graph (nodes, edges, backward order, chain-rule steps)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.autodiff as ad
from engine.autodiff import Tensor
from engine.autodiff.explore import descent_path, surface_grid
from engine.autodiff.expr import parse_formula
from engine.autodiff.graph import export_graph, gradients_after


def diamond(ns, x, y):
    """x feeds two branches that meet again, and y is used three times."""
    a = ns.tanh(x * y)
    b = ns.exp(-x) + y
    c = a * b + a / (1 + b * b)
    return (c * y).sum() + (x * a).mean()


OURS = ad
JAX = type("JaxNamespace", (), {"tanh": staticmethod(jnp.tanh), "exp": staticmethod(jnp.exp)})


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_diamond_graph_matches_jax(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x_value, y_value = rng.normal(size=(3, 2)), rng.normal(size=(2,))
    x, y = Tensor(x_value, requires_grad=True), Tensor(y_value, requires_grad=True)
    out = diamond(OURS, x, y)
    out.backward()
    with jax.enable_x64(True):
        value, (gx, gy) = jax.value_and_grad(lambda a, b: diamond(JAX, a, b), argnums=(0, 1))(
            x_value, y_value)
    np.testing.assert_allclose(out.data, value, rtol=1e-6)
    np.testing.assert_allclose(x.grad, gx, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(y.grad, gy, rtol=1e-6, atol=1e-12)


def test_backward_twice_gives_the_same_gradients_not_double() -> None:
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    h = x * x
    out = (h + h).sum()  # h used twice
    out.backward()
    first = x.grad.copy()
    out.backward()
    np.testing.assert_array_equal(x.grad, first)
    np.testing.assert_array_equal(first, 4 * x.data)


def test_zero_grad_and_lazy_zeros() -> None:
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    np.testing.assert_array_equal(w.grad, np.zeros((2, 2)))
    (w * 3).sum().backward()
    assert w.grad.sum() == 12
    w.zero_grad()
    np.testing.assert_array_equal(w.grad, np.zeros((2, 2)))


def test_inputs_without_grad_get_no_closure_and_no_buffer() -> None:
    x = Tensor(np.ones((4, 3)))
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    hidden = x * 2  # data only: not part of the graph
    assert not hidden.requires_grad and hidden.parents == () and hidden.inputs == ()
    out = (hidden @ w).sum()
    assert out.requires_grad and (hidden @ w).parents == (w,)
    out.backward()
    assert x._grad is None and hidden._grad is None


def test_a_deep_chain_does_not_hit_the_recursion_limit() -> None:
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**5000)


def test_mlp_step_matches_jax_in_float32() -> None:
    rng = np.random.default_rng(0)
    params = {
        "w0": rng.normal(0, 0.1, (12, 8)).astype(np.float32), "b0": np.zeros(8, np.float32),
        "w1": rng.normal(0, 0.3, (8, 4)).astype(np.float32), "b1": np.zeros(4, np.float32),
    }
    x, y = rng.normal(size=(6, 12)).astype(np.float32), rng.integers(0, 4, 6)

    def loss(ns, p):
        hidden = ns.relu(x @ p["w0"] + p["b0"])
        return -ns.log_softmax(hidden @ p["w1"] + p["b1"])[np.arange(6), y].mean()

    tensors = {k: Tensor(v, requires_grad=True) for k, v in params.items()}
    out = loss(ad, tensors)
    out.backward()
    jax_ns = type("J", (), {"relu": staticmethod(jax.nn.relu),
                            "log_softmax": staticmethod(jax.nn.log_softmax)})
    expected = jax.grad(lambda p: loss(jax_ns, p))(params)
    assert out.dtype == np.float32
    for name, tensor in tensors.items():
        assert tensor.grad.dtype == np.float32
        np.testing.assert_allclose(tensor.grad, expected[name], rtol=1e-5, atol=1e-6)


# ----- the exported graph --------------------------------------------------------------------


def neuron() -> tuple[Tensor, dict[str, Tensor]]:
    """f = tanh(w*x + b) * x at w=2, x=3, b=1, labelled like the formula parser labels it."""
    values = {"w": 2.0, "x": 3.0, "b": 1.0}
    leaves = {n: Tensor(v, requires_grad=True, label=n) for n, v in values.items()}
    f = (leaves["w"] * leaves["x"] + leaves["b"]).tanh() * leaves["x"]
    f.backward()
    return f, leaves


def test_export_lists_nodes_edges_and_backward_order() -> None:
    f, _ = neuron()
    graph = export_graph(f)
    names = [n.name for n in graph.nodes]
    assert names == ["w", "x", "v2", "b", "v4", "v5", "f"]
    assert [n.op for n in graph.nodes] == ["input", "input", "*", "input", "+", "tanh", "*"]
    assert graph.edges == [(0, 2), (1, 2), (1, 6), (2, 4), (3, 4), (4, 5), (5, 6)]
    # Output first; every node before the nodes it feeds on.
    assert graph.backward_order == [6, 5, 4, 2]
    assert graph.root == 6
    position = {node: i for i, node in enumerate(graph.backward_order)}
    for src, dst in graph.edges:
        if src in position:
            assert position[dst] < position[src]


def test_chain_steps_multiply_upstream_by_local_and_add_up_to_the_gradient() -> None:
    f, leaves = neuron()
    graph = export_graph(f)
    tanh_step = graph.steps[5][0]
    t = np.tanh(7.0)
    assert tanh_step.upstream == pytest.approx(3.0)  # df/d tanh = x
    assert tanh_step.local == pytest.approx(1 - t**2)
    assert tanh_step.contribution == pytest.approx(3.0 * (1 - t**2))
    assert tanh_step.rule == "1 - tanh²(v4)"
    assert tanh_step.text.startswith("∂f/∂v4 += ∂f/∂v5 · ∂v5/∂v4 = 3 · ")
    # x is used twice: its two contributions sum to its gradient.
    into_x = [s.contribution for steps in graph.steps.values() for s in steps if s.input == 1]
    assert len(into_x) == 2 and sum(into_x) == pytest.approx(leaves["x"].grad)
    mul_rules = {graph.nodes[s.input].name: s.rule for s in graph.steps[2]}
    assert mul_rules == {"w": "x", "x": "w"}


def test_exporting_leaves_every_gradient_untouched() -> None:
    f, leaves = neuron()
    before = {n: float(t.grad) for n, t in leaves.items()}
    export_graph(f)
    assert {n: float(t.grad) for n, t in leaves.items()} == before


def test_constants_are_drawn_without_gradient() -> None:
    x = Tensor(2.0, requires_grad=True, label="x")
    f = x**3 + 1
    f.backward()
    graph = export_graph(f)
    constants = [n for n in graph.nodes if n.op == "const"]
    assert sorted(n.name for n in constants) == ["1", "3"]
    assert all(n.grad is None for n in constants)
    power_step = graph.steps[[n.op for n in graph.nodes].index("**")][0]
    assert power_step.rule == "3·x^(3-1)" and power_step.local == pytest.approx(12.0)


def test_tensor_graphs_export_with_shapes() -> None:
    w = Tensor(np.ones((3, 2)), requires_grad=True, label="w")
    out = (np.ones((4, 3)) @ w).relu().sum()
    out.backward()
    graph = export_graph(out, root_name="L")
    assert graph.nodes[graph.root].name == "L"
    assert graph.nodes[0].shape == (4, 3) and graph.nodes[0].op == "const"
    matmul_step = graph.steps[[n.op for n in graph.nodes].index("@")][0]
    np.testing.assert_array_equal(matmul_step.contribution, w.grad)
    assert "tensor" in matmul_step.text


# ----- the public backward API: each op returns its inputs' gradients ------------------------


def test_input_gradients_are_unbroadcast_to_each_input_and_none_for_constants() -> None:
    w = Tensor(np.ones((1, 3)), requires_grad=True)
    data = Tensor(np.arange(6.0).reshape(2, 3))
    out = w * data  # w is stretched over 2 rows
    g = np.full((2, 3), 0.5)
    to_w, to_data = out.input_gradients(g)
    np.testing.assert_array_equal(to_w, (g * data.data).sum(axis=0, keepdims=True))
    assert to_data is None  # data needs no gradient: never computed


def test_a_gradient_of_the_wrong_shape_is_refused() -> None:
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    out = x.reshape(3, 2)
    out._backward = lambda g: (g,)  # a buggy op that forgets to reshape its gradient back
    with pytest.raises(ValueError, match="cannot belong to shape"):
        out.input_gradients(np.ones((3, 2)))


def test_backward_visits_yield_each_op_once_output_first_with_what_it_sent() -> None:
    f, leaves = neuron()
    visits = list(f.backward_visits())
    assert [node.op for node, _ in visits] == ["*", "tanh", "+", "*"]
    assert visits[0][0] is f
    for node, sent in visits:
        assert len(sent) == len(node.inputs)
    np.testing.assert_allclose(leaves["w"].grad, 3 * (1 - np.tanh(7.0) ** 2) * 3)


def test_subtraction_and_mean_are_built_from_basic_ops() -> None:
    a, b = Tensor(np.array([1.0, 4.0]), requires_grad=True), Tensor(2.0, requires_grad=True)
    difference = a - b
    assert difference.op == "+" and difference.inputs[1].op == "neg"
    average = difference.mean()
    assert average.op == "*" and average.inputs[0].op == "sum"
    average.backward()
    np.testing.assert_array_equal(a.grad, [0.5, 0.5])
    assert b.grad == -1.0


def test_exporting_a_graph_runs_backward_itself() -> None:
    x = Tensor(3.0, requires_grad=True, label="x")
    f = x * x
    graph = export_graph(f)  # backward never called by hand
    assert graph.nodes[graph.root].grad == 1.0
    assert graph.nodes[0].grad == pytest.approx(6.0) and graph.steps[graph.root]


def test_gradients_fill_in_as_the_backward_steps_reach_them() -> None:
    f, leaves = neuron()  # f = tanh(w*x + b) * x: visits f, tanh, +, *
    graph = export_graph(f)
    ids = {n.name: n.id for n in graph.nodes}
    first = gradients_after(graph, 1)
    assert set(first) == {ids["f"], ids["v5"], ids["x"]}  # f sent to tanh and to x
    assert first[ids["f"]][1] and first[ids["v5"]][1]  # both final: their consumers ran
    assert not first[ids["x"]][1]  # x also feeds w*x, not visited yet
    assert first[ids["x"]][0] == pytest.approx(np.tanh(7.0))
    everything = gradients_after(graph, len(graph.backward_order))
    assert set(everything) == {n.id for n in graph.nodes if n.grad is not None}
    for node_id, (grad, final) in everything.items():
        assert final and grad == pytest.approx(graph.nodes[node_id].grad)
    assert everything[ids["x"]][0] == pytest.approx(leaves["x"].grad)


def test_roll_downhill_moves_two_chosen_variables_and_holds_the_others() -> None:
    formula = parse_formula("(w - 1)**2 + 3*(b + 2)**2 + x*w")  # three variables
    path = descent_path(formula, {"w": 0.0, "b": 0.0, "x": 0.5}, 0.1, 200, plotted=("w", "b"))
    # Minimum over (w, b) with x = 0.5 held: w = 1 - x/2, b = -2.
    np.testing.assert_allclose(path.points[-1], [0.75, -2.0], atol=1e-8)
    xs, ys, z = surface_grid(formula, (0, 1), (-3, 0), n=4, plotted=("w", "b"),
                             held={"x": 0.5})
    np.testing.assert_allclose(z[2, 1], (xs[1] - 1)**2 + 3*(ys[2] + 2)**2 + 0.5*xs[1])
    with pytest.raises(ValueError, match="two distinct variables"):
        descent_path(formula, {"w": 0.0, "b": 0.0, "x": 0.5}, 0.1, 5, plotted=("w", "w"))
