"""The autodiff playground driven through the router with AppTest (no browser)."""

import base64
import json

import numpy as np
import pytest
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from ui.loaders import load_embedded_dataset


@pytest.fixture
def playground() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/autodiff.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown_texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def enter(at: AppTest, formula: str) -> AppTest:
    at.text_input(key="ad_formula").set_value(formula).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_default_formula_shows_value_gradients_graph_and_a_check(playground: AppTest) -> None:
    assert playground.text_input(key="ad_formula").value == "tanh(w*x + b)"
    assert {n.label for n in playground.number_input} >= {"w", "x", "b"}
    summary = next(t for t in markdown_texts(playground) if t.startswith("**f = "))
    assert "∂f/∂w" in summary and "∂f/∂x" in summary and "∂f/∂b" in summary
    assert playground.get("graphviz_chart")
    assert any("pass" in t for t in markdown_texts(playground))
    assert not playground.error


def test_entering_a_formula_gives_its_gradients(playground: AppTest) -> None:
    enter(playground, "x**2 + 3*x*y")
    playground.number_input(key="ad_var_x").set_value(2.0).run()
    playground.number_input(key="ad_var_y").set_value(1.0).run()
    summary = next(t for t in markdown_texts(playground) if t.startswith("**f = "))
    # f = 4 + 6 = 10; df/dx = 2x + 3y = 7; df/dy = 3x = 6
    assert summary == "**f = 10** · ∂f/∂x = 7 · ∂f/∂y = 6"


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("__import__('os').system('true')", "attribute access"),
        ("x +", "not a formula"),
        ("x.real", "attribute access"),
        ("9**9**9", "power inside an exponent"),
    ],
)
def test_a_bad_formula_shows_an_error_not_a_traceback(playground: AppTest, formula: str,
                                                      message: str) -> None:
    enter(playground, formula)
    assert len(playground.error) == 1 and message in playground.error[0].value
    assert not playground.get("graphviz_chart")


def test_a_domain_error_is_explained(playground: AppTest) -> None:
    enter(playground, "log(x)")
    playground.number_input(key="ad_var_x").set_value(-1.0).run()
    assert not playground.exception
    assert "log needs a positive number" in playground.error[0].value


def test_step_control_walks_the_backward_order(playground: AppTest) -> None:
    enter(playground, "tanh(w*x + b)")
    slider = playground.slider(key="ad_step")
    assert slider.min == 1 and slider.max == 3  # tanh, +, *
    step_lines = [t for t in markdown_texts(playground) if t.startswith("**Step")]
    assert step_lines == ["**Step 1 of 3:** node `f` = `tanh(w*x + b)`"]
    slider.set_value(3).run()
    texts = markdown_texts(playground)
    assert any(t.startswith("**Step 3 of 3:** node `v2` = `w*x`") for t in texts)
    chain = [c.value for c in playground.code]
    assert any(c.startswith("∂f/∂w += ∂f/∂v2 · ∂v2/∂w") for c in chain)


def test_the_step_control_survives_a_shorter_formula(playground: AppTest) -> None:
    playground.slider(key="ad_step").set_value(3).run()
    enter(playground, "exp(a)")  # a single backward step: no slider, no crash
    assert any(t.startswith("**Step 1 of 1:**") for t in markdown_texts(playground))


def test_descent_panel_plots_two_chosen_variables_of_three(playground: AppTest) -> None:
    picker = playground.multiselect(key="ad_plotted")
    assert picker.value == ["b", "w"]  # tanh(w*x + b): x stays at its value
    picker.set_value(["w", "x"]).run()
    assert not playground.exception and not playground.warning
    contour = json.loads(playground.get("plotly_chart")[0].proto.spec)
    assert contour["layout"]["xaxis"]["title"]["text"] == "w"
    assert contour["layout"]["yaxis"]["title"]["text"] == "x"
    enter(playground, "x**2 + 3*y**2")
    playground.number_input(key="ad_lr").set_value(1.5).run()  # too big: the path flies off
    assert any("ran off" in w.value for w in playground.warning)
    enter(playground, "sin(x)")
    assert any("two variables" in i.value for i in playground.info)


def race_rows(at: AppTest) -> list[dict]:
    return at.dataframe[-1].value.to_dict("records")


@pytest.mark.parametrize("surface", ["round bowl", "long narrow valley", "Rosenbrock",
                                     "saddle", "Himmelblau", "Beale"])
def test_the_race_runs_on_every_preset(playground: AppTest, surface: str) -> None:
    playground.pills(key="ad_race_surface").set_value(surface).run()
    assert not playground.exception and not playground.warning
    rows = race_rows(playground)
    assert [r["optimiser"] for r in rows] == ["SGD", "Momentum", "Adam"]
    assert all(r["outcome"] != "diverged" for r in rows)
    race = json.loads(playground.get("plotly_chart")[-1].proto.spec)
    assert len(race["frames"]) > 10  # it is animated


def test_the_race_on_a_user_formula_with_four_optimisers(playground: AppTest) -> None:
    enter(playground, "x**2 + 3*y**2 + z")
    playground.pills(key="ad_race_surface").set_value("your formula").run()
    playground.multiselect(key="ad_race_optimizers").set_value(
        ["sgd", "nesterov", "rmsprop", "adam"]).run()
    assert not playground.exception
    rows = race_rows(playground)
    assert [r["optimiser"] for r in rows] == ["SGD", "Nesterov", "RMSProp", "Adam"]
    assert all(float(r["final f"]) < 1.5**2 + 3 + 0.5 for r in rows)  # went downhill


def test_a_diverging_optimiser_is_reported(playground: AppTest) -> None:
    playground.pills(key="ad_race_surface").set_value("round bowl").run()
    playground.number_input(key="ad_race_lr_sgd").set_value(1.5).run()
    assert not playground.exception
    assert any("SGD diverged" in w.value for w in playground.warning)
    outcomes = {r["optimiser"]: r["outcome"] for r in race_rows(playground)}
    assert outcomes["SGD"] == "diverged" and outcomes["Adam"] != "diverged"


def test_a_race_needs_two_optimisers(playground: AppTest) -> None:
    playground.multiselect(key="ad_race_optimizers").set_value(["adam"]).run()
    assert any("at least two optimisers" in i.value for i in playground.info)


def test_overfit_one_digit(playground: AppTest) -> None:
    playground.slider(key="ad_overfit_steps").set_value(20).run()
    playground.button(key="ad_overfit_run").click().run()
    assert not playground.exception
    result = playground.session_state["ad_overfit"]
    losses = [s.loss for s in result["history"]]
    assert len(losses) == 21 and losses[-1] < losses[0] / 2
    charts = {chart.key for chart in playground.get("plotly_chart")}
    assert {"ad_overfit_loss", "ad_overfit_before", "ad_overfit_after"} <= charts


def graph_spec(at: AppTest) -> str:
    return at.get("graphviz_chart")[0].proto.spec


def test_gradients_fill_in_as_the_steps_reach_them(playground: AppTest) -> None:
    enter(playground, "tanh(w*x + b)")
    first = graph_spec(playground)  # step 1: only f and the sum it sends to have a gradient
    assert first.count("grad ") == 2
    assert "w\\nvalue 0.8\\ngrad" not in first
    playground.slider(key="ad_step").set_value(3).run()
    last = graph_spec(playground)  # every node reached, every gradient final
    assert last.count("grad ") == 6 and "so far" not in last


def test_a_kink_is_explained_not_failed(playground: AppTest) -> None:
    enter(playground, "abs(x)")
    playground.number_input(key="ad_var_x").set_value(0.0).run()
    assert not any("fail" in t for t in markdown_texts(playground))
    assert any("kink" in i.value and "subgradient" in i.value for i in playground.info)


def test_the_valley_example_descends_with_its_own_step_size(playground: AppTest) -> None:
    playground.pills(key="ad_example").set_value("valley").run()
    assert playground.text_input(key="ad_formula").value.startswith("(1 - x)**2")
    assert not playground.warning  # it used to fly off at once
    y = json.loads(playground.get("plotly_chart")[1].proto.spec)["data"][0]["y"]
    f_along_path = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])
    assert f_along_path[-1] < f_along_path[0] / 100


def test_memorise_picks_a_digit_and_an_example_of_it(playground: AppTest) -> None:
    playground.segmented_control(key="ad_digit").set_value(7).run()
    playground.number_input(key="ad_digit_example").set_value(3).run()
    playground.slider(key="ad_overfit_steps").set_value(10).run()
    playground.button(key="ad_overfit_run").click().run()
    assert not playground.exception
    index = playground.session_state["ad_overfit"]["index"]
    assert load_embedded_dataset().split.y_train[index] == 7
    (after,) = [c.proto.spec for c in playground.get("plotly_chart") if c.key == "ad_overfit_after"]
    assert "its label (7)" in after and "other digits" in after


def test_user_text_in_errors_is_shown_literally(playground: AppTest) -> None:
    enter(playground, "__import__('os')")
    assert r"unknown function \_\_import\_\_" in playground.error[0].value


def test_tiny_values_keep_their_magnitude(playground: AppTest) -> None:
    assert all(n.proto.format == "%g" for n in playground.number_input
               if n.key.startswith("ad_var_"))


def test_a_product_of_100_factors_is_drawn(playground: AppTest) -> None:
    enter(playground, "*".join(["x"] * 100))
    assert not playground.error
    assert "rank=same" in graph_spec(playground)  # wrapped into rows
