"""The autodiff playground's views: graph layout, literal error text, kink notes, legends."""

import re

import numpy as np
import pytest

from engine.autodiff.explore import check_gradients
from engine.autodiff.expr import FormulaError, evaluate_with_gradients, parse_formula
from engine.autodiff.graph import export_graph, gradients_after
from ui.views import autodiff as views


def graph_of(text: str):
    formula = parse_formula(text)
    return export_graph(evaluate_with_gradients(formula, dict.fromkeys(formula.variables, 0.5))
                        .output)


def test_a_short_graph_is_one_left_to_right_row() -> None:
    dot = views.graph_dot(graph_of("tanh(w*x + b)"))
    assert "rankdir=LR" in dot and "rank=same" not in dot


def test_a_long_chain_is_wrapped_into_rows_of_a_few_levels() -> None:
    graph = graph_of("sin(" * 30 + "x" + ")" * 30)  # 31 levels deep
    dot = views.graph_dot(graph)
    rows = re.findall(r"\{rank=same; ([^}]*)\}", dot)
    assert "rankdir=TB" in dot and len(rows) == 7  # 31 levels, 5 per row
    assert all(len(row.split()) <= views.ROW_LENGTH for row in rows)
    assert sorted(n for row in rows for n in row.split()) == sorted(f"n{i}" for i in range(31))


def test_depths_are_the_longest_paths_from_the_inputs() -> None:
    graph = graph_of("x*y + x")  # x, y (0); x*y (1); + (2)
    names = [n.name for n in graph.nodes]
    depth = dict(zip(names, views.depths(graph), strict=True))
    assert depth == {"x": 0, "y": 0, "v2": 1, "f": 2}


def test_node_labels_show_only_the_gradients_reached() -> None:
    graph = graph_of("x*x + x")
    dot = views.graph_dot(graph, graph.backward_order[0], gradients_after(graph, 1))
    x_label = next(line for line in dot.splitlines() if line.startswith("  n0 "))
    assert "grad so far 1" in x_label  # the + sent 1; the x*x still to come
    assert "v1 = ×\\nvalue 0.25\\ngrad 1" in dot  # x*x got its (final) gradient from +


def test_error_text_is_shown_literally() -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula("__import__('os')")
    text = views.formula_error_markdown(info.value)
    assert r"unknown function \_\_import\_\_" in text
    assert "(column 1: `__import__('os')`)" in text
    assert views.escape_markdown("a*b_c [x](y) $z$") == r"a\*b\_c \[x\]\(y\) \$z\$"


def test_kink_note_names_the_slopes_on_both_sides() -> None:
    check = check_gradients(parse_formula("abs(x)"), {"x": 0.0})
    note = views.kink_note(check)
    assert "slope -1 on the left and 1 on the right" in note and "subgradient" in note
    assert views.kink_note(check_gradients(parse_formula("abs(x)"), {"x": 1.0})) == ""


def test_overfit_bars_put_the_label_in_its_own_legend_entry() -> None:
    probabilities = np.linspace(0.01, 0.19, 10)
    fig = views.overfit_bars_figure(probabilities, 3, "After")
    others, label = fig.data
    assert label.name == "its label (3)" and list(label.x) == ["3"]
    assert label.y[0] == pytest.approx(probabilities[3])
    assert "3" not in others.x and len(others.x) == 9
    assert list(fig.layout.xaxis.categoryarray) == [str(d) for d in range(10)]


def test_a_wrapped_graph_draws_a_variable_again_in_each_row_it_feeds() -> None:
    graph = graph_of("*".join(["x"] * 100))  # x feeds all 99 products, 20 rows of them
    dot = views.graph_dot(graph)
    copies = set(re.findall(r"^  (n0r\d+) \[", dot, flags=re.MULTILINE))
    assert len(copies) == 19  # every row but x's own
    # No edge leaves x's own box for another row: each row is fed by its own copy.
    targets = re.findall(r"^  n0 -> n(\d+)(?:;| \[(?!style=invis))", dot, flags=re.MULTILINE)
    row = views.rows(graph)
    assert targets and all(row[int(t)] == row[0] for t in targets)
