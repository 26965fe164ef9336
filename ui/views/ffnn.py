"""The feed-forward room's views: live weights, the twin-engine check, a drawn digit."""

from __future__ import annotations

import numpy as np
import streamlit as st

from engine import ffnn
from engine.ffnn.model import TWIN_TOLERANCE
from engine.models.model import Model
from engine.training.loop import Progress
from ui.figures import charts
from ui.figures.pictures import enlarged
from ui.rooms import FEEDFORWARD
from ui.rooms.state import room_state, update_room
from ui.sketch import preprocess_or_explain, sketch_input
from ui.views.explain import show_where_it_looks


def draw_weights(event: Progress, key: str, *, n_units: int) -> None:
    """The live panel's extra: first-layer weights as images (n_units: how many units the
    first layer has, of which the snapshot holds the first few), and the latest twin check."""
    snapshot = event.history.snapshots[-1]
    shown = len(snapshot.weights)
    units = "Each unit" if shown == n_units else f"{shown} of {n_units} units"
    title = f"{units}: what each looks for (red +, blue −)"
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.weight_grid_figure(snapshot.weights, columns=16, title=title),
                      key=f"{key}_weights_chart", width="stretch")
    if snapshot.twin:
        figure = twin_figure(snapshot.twin, "Twin check: ours vs jax.grad, latest",
                             numbered=True)
        right.plotly_chart(figure, key=f"{key}_twin_chart", width="stretch")


def twin_figure(differences, title: str, numbered: bool = False):
    """The twin check's differences per layer; numbered: the layers named by number only, under
    an axis titled "layer" (a narrow column has no room for "layer 7 (BN)" eight times)."""
    names = [d.layer.removeprefix("layer ") if numbered else d.layer for d in differences]
    figure = charts.gradient_difference_figure(names, [d.max_abs for d in differences],
                                               [d.max_rel for d in differences], title,
                                               tolerance=TWIN_TOLERANCE)
    if numbered:  # the axis title goes where the legend was: the legend moves down
        figure.update_xaxes(title="layer", type="category").update_layout(legend_y=-0.3)
    return figure


def twin_verdict(differences) -> tuple[bool, str]:
    """(passed, a sentence): every layer's largest relative difference within TWIN_TOLERANCE?"""
    worst = max(differences, key=lambda d: d.max_rel)
    if worst.max_rel <= TWIN_TOLERANCE:
        return True, (f"Pass: the largest difference, in {worst.layer}, is {worst.max_rel:.1e} of "
                      f"the largest gradient, within float32's rounding ({TWIN_TOLERANCE:g}).")
    return False, (f"Fail: in {worst.layer} the engines differ by {worst.max_rel:.1e} of the "
                   f"largest gradient, more than float32's rounding allows ({TWIN_TOLERANCE:g}):"
                   " one of them computes a different gradient.")


def show_twin_check(model: Model, loss: str, split) -> None:
    """One batch, the model's parameters, both engines' gradients compared layer by layer."""
    st.markdown("One batch of 64 training digits, the current model's parameters, gradients "
                "from **our autodiff engine** and from **jax.grad**: how far apart are they, "
                "layer by layer? float32 arithmetic keeps about 7 significant digits, and the "
                "two engines add up the same products in different orders, so they may differ "
                f"by rounding: up to {TWIN_TOLERANCE:g} of the largest gradient passes.")
    if st.button("Compare the gradients now", key="ff_twin_button"):
        params = {name: np.asarray(value) for name, value in model.params.items()}
        update_room(FEEDFORWARD, twin=tuple(ffnn.gradient_differences(
            params, *ffnn.twin_batch(split), arch=model.architecture, loss_name=loss)))
    differences = room_state(FEEDFORWARD).twin
    if differences:
        passed, verdict = twin_verdict(differences)
        (st.success if passed else st.error)(verdict)
        st.plotly_chart(twin_figure(differences, "Gradient difference per layer"),
                        key="ff_twin_now_chart", width="stretch")


def sketch_digit(label: str) -> np.ndarray | None:
    """A canvas to draw on, for the room's model (`label`): the drawn digit as the model sees it
    (28, 28) in [0, 1], for every tab that reads it; None before one is drawn."""
    st.markdown(f"Draw a digit: {label} reads it.")
    pre = preprocess_or_explain(sketch_input("ff"))
    return None if pre is None else pre.final


def show_sketch_answer(model: Model, digit: np.ndarray) -> None:
    """What the model reads in the drawn digit (28, 28): the image it sees, its ten
    probabilities and where it looks."""
    left, right = st.columns([1, 3])
    left.image(enlarged(digit, 8), caption="what the model sees (28×28)", width=224)
    probabilities = model.predict_proba(digit[None])[0]
    right.plotly_chart(charts.probability_bars_figure(
        probabilities, charts.reads_title(int(probabilities.argmax()))),
        key="ff_sketch_chart", width="stretch")
    show_where_it_looks(model, "this net", digit, probabilities, prefix="ff")
