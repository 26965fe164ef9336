"""Autodiff playground: a typed formula becomes a graph; watch backprop run through it."""

from __future__ import annotations

import numpy as np
import streamlit as st

from engine.autodiff import explore
from engine.autodiff.expr import Formula, FormulaError, evaluate_with_gradients, parse_formula
from engine.autodiff.graph import export_graph, gradients_after
from engine.data.mnist import as_float
from engine.playground import overfit
from ui.figures.charts import loss_curve_figure
from ui.loaders import load_embedded_dataset
from ui.state import ensure_router
from ui.views import autodiff as views
from ui.views import race as race_views

ensure_router()

EXAMPLES = {
    "neuron": "tanh(w*x + b)",
    "bump": "sin(x)*exp(-y**2)",
    "softplus": "log(1 + exp(a))",
    "bowl": "x**2 + 3*y**2",
    "valley": "(1 - x)**2 + 10*(y - x**2)**2",
}
START_VALUES = {"x": 1.5, "y": 1.0, "w": 0.8, "b": -0.3, "a": 0.5}
# Step size and number of steps of the descent that suit each example (the valley's walls are
# steep: a larger step flies off at once; its floor is flat: it needs more steps).
DESCENT = {"valley": (0.01, 100)}
DEFAULT_DESCENT = (0.05, 40)


def use_example(name: str) -> None:
    """Put the example `name` in the formula box, with a descent that suits it."""
    st.session_state.ad_formula = EXAMPLES[name]
    st.session_state.ad_lr, st.session_state.ad_descent_steps = DESCENT.get(name,
                                                                            DEFAULT_DESCENT)


def use_picked_example() -> None:
    """Use the clicked example, and un-click it (so it can be re-picked)."""
    if st.session_state.ad_example:
        use_example(st.session_state.ad_example)
    st.session_state.ad_example = None


def variable_inputs(formula: Formula) -> dict[str, float]:
    """A number input per variable (key ad_var_<name>); their current values."""
    columns = st.columns(max(len(formula.variables), 1))
    for column, name in zip(columns, formula.variables, strict=False):
        key = f"ad_var_{name}"
        if key not in st.session_state:
            st.session_state[key] = START_VALUES.get(name, 0.5)
        column.number_input(name, key=key, step=0.1, format="%g")  # %g: 1e-300 stays 1e-300
    return {name: float(st.session_state[f"ad_var_{name}"]) for name in formula.variables}


st.title(":material/functions: Autodiff playground")
st.caption(
    "Everything here is differentiated by Glassbox's own reverse-mode autodiff engine "
    "(engine/autodiff, plain numpy), and checked against JAX."
)

# --- 1. the formula and its graph -----------------------------------------------------------
st.header("1 · A formula is a graph")
st.markdown(
    "Every formula is built from small operations; the engine records each one as a node, "
    "with arrows from its inputs. After the forward pass computes every node's **value**, "
    "the backward pass computes every node's **grad**: how much the output f changes when "
    "that node changes a little."
)
st.pills("Examples", list(EXAMPLES), key="ad_example", on_change=use_picked_example,
         format_func=lambda name: views.escape_markdown(EXAMPLES[name]))  # shown as typed
st.text_input(
    "Formula", key="ad_formula", max_chars=200,
    help="Numbers, variables (x, w1, bias, ...), + − * / **, and the functions sin, cos, exp, "
         "log, sqrt, tanh, sigmoid, relu, abs. Constants: pi, e.",
)

formula = evaluation = graph = None
try:
    formula = parse_formula(st.session_state.ad_formula)
    values = variable_inputs(formula)
    evaluation = evaluate_with_gradients(formula, values)
    graph = export_graph(evaluation.output)
except FormulaError as error:
    st.error(views.formula_error_markdown(error))

if evaluation is not None:
    gradients = [f"∂f/∂{v} = {g:.6g}" for v, g in evaluation.gradients.items()]
    st.markdown(" · ".join([f"**f = {evaluation.value:.6g}**", *gradients]))

# --- 2. backprop, one node at a time --------------------------------------------------------
if graph is not None:
    st.header("2 · Step through backprop")
    st.markdown(
        "Backprop visits the nodes from the output back to the inputs, each once, in the "
        "order below. At each node it multiplies the gradient arriving from the output by "
        "the node's own local derivative (the chain rule) and adds the product to each input's "
        "gradient."
    )
    order = graph.backward_order
    current, step = None, 0
    if order:
        st.session_state.ad_step = step = min(max(st.session_state.ad_step, 1), len(order))
        if len(order) > 1:  # a slider needs two stops
            step = st.slider("Backward step", 1, len(order), key="ad_step")
        current = order[step - 1]
    graph_column, steps_column = st.columns([3, 2])
    shown = gradients_after(graph, step)
    graph_column.graphviz_chart(views.graph_dot(graph, current, shown), width="content")
    with steps_column:
        if current is None:
            st.info("The output is a variable or a constant itself: there is nothing to step "
                    "through. Try one of the examples.")
        else:
            node = graph.nodes[current]
            st.markdown(f"**Step {step} of {len(order)}:** node `{node.name}` "
                        f"= `{node.label or node.op}`")
            for chain in graph.steps[current]:
                rule = f"  (local derivative: {chain.rule})" if chain.rule else ""
                st.code(chain.text + rule, language=None, wrap_lines=True)
            st.caption("Highlighted: the current node (orange) and the inputs it sends "
                       "gradient to (blue). Only nodes reached so far show a gradient; \"so "
                       "far\": more is to come (a node used twice receives two contributions).")

# --- 3. verification ------------------------------------------------------------------------
if evaluation is not None and formula.variables:
    st.header("3 · Is the gradient right?")
    st.markdown(
        "The same formula is differentiated two more ways: by `jax.grad`, and numerically "
        "by nudging each variable a tiny step h either way, (f(v+h) − f(v−h)) / 2h. "
        "Our engine should agree with JAX to rounding and with the nudges to about 1e-6."
    )
    check = explore.check_gradients(formula, values)
    st.dataframe(views.gradient_table(check), hide_index=True, width="stretch")
    if check.kinks:
        st.info(views.kink_note(check), icon=":material/info:")
    if not check.passed:
        st.badge("fail: the gradients disagree", icon=":material/cancel:", color="red")
    elif not check.kinks:
        st.badge("pass: all three agree", icon=":material/check_circle:", color="green")
    st.caption(f"max |ours − jax| = {check.max_abs_vs_jax:.2e} · "
               f"max |ours − central differences| = {check.max_abs_vs_differences:.2e}")

# --- 4. gradient descent on the surface -----------------------------------------------------
if evaluation is not None:
    st.header("4 · Roll downhill")
    st.markdown(
        "The gradient points uphill, so stepping against it lowers f: that is all gradient "
        "descent is, and it is how networks learn. The path starts at the values above; "
        "too large a step overshoots and can fly off."
    )
    race_views.show_roll_downhill(formula, values)

# --- 5. the optimiser race ------------------------------------------------------------------
st.header("5 · The optimiser race")
st.markdown(
    "The networks in the other rooms learn with the same optimisers raced here "
    "(`engine.nn.optim`). Each starts from the same point; momentum builds up speed, RMSProp and "
    "Adam rescale each direction's step. Change a step size until one flies off."
)
if evaluation is not None:
    race_views.show_race(formula, values)
else:
    race_views.show_race(None, {})

# --- 6. overfit one image -------------------------------------------------------------------
st.header("6 · Memorise one digit")
st.markdown(
    "A small network (784-32-10, ReLU) whose every gradient comes from our engine is trained on "
    "a single image until it knows it by heart. It is the classic sanity check: if the loss "
    "does not fall towards zero on one example, something in the gradients is broken."
)
split = load_embedded_dataset().split
picker, digit_column, settings = st.columns([3, 1, 2])
digit = picker.segmented_control("Digit", list(range(10)), key="ad_digit", required=True)
examples = np.flatnonzero(split.y_train == digit)  # this digit's training images
st.session_state.ad_digit_example = min(st.session_state.ad_digit_example, len(examples))
example = picker.number_input(f"Example of a {digit} (1 to {len(examples)})", 1, len(examples),
                              key="ad_digit_example")
index = int(examples[example - 1])
image = as_float(split.x_train[index])
digit_column.image(image, caption=f"training image #{index}", width=112, clamp=True)
settings.slider("Training steps", 10, overfit.MAX_STEPS, key="ad_overfit_steps")
settings.select_slider("Learning rate", [0.002, 0.005, 0.01, 0.02, 0.05], key="ad_overfit_lr")
if st.button("Train on this digit", key="ad_overfit_run", type="primary"):
    progress = st.progress(0.0, text="training…")
    total = st.session_state.ad_overfit_steps
    history = []
    for state in overfit.overfit_one_image(image, digit, total, st.session_state.ad_overfit_lr):
        history.append(state)
        progress.progress(state.step / total, text=f"step {state.step}, loss {state.loss:.4f}")
    progress.empty()
    st.session_state.ad_overfit = {"index": index, "history": history}

result = st.session_state.ad_overfit
if result is not None and result["index"] == index:
    history = result["history"]
    loss_column, before_column, after_column = st.columns(3)
    loss_column.plotly_chart(loss_curve_figure([s.loss for s in history]), key="ad_overfit_loss")
    before_column.plotly_chart(
        views.overfit_bars_figure(history[0].probabilities, digit, "Before training"),
        key="ad_overfit_before",
    )
    after_column.plotly_chart(
        views.overfit_bars_figure(history[-1].probabilities, digit,
                                  f"After {history[-1].step} steps"),
        key="ad_overfit_after",
    )
