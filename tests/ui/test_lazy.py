"""Heavy views wait until they are opened (ui.lazy), and widget values outlive the reruns that do
not draw them (ui.state.keep_widget_values): the rooms' tabs, a room left and come back to."""

from collections.abc import Callable

import pytest
from helpers import assert_calm, canvas_state, mnist_digit, mnist_on_canvas, open_page, open_tab
from streamlit.elements.lib import policies
from streamlit.testing.v1 import AppTest

from ui.sketch import canvas_key

FF, CNN, SKETCH = "pages/feedforward.py", "pages/cnn.py", "pages/sketch.py"
PREFIXES = {FF: "ff", CNN: "cnn", SKETCH: "sk"}  # whose canvas a drawing goes on


def keys_of(at: AppTest, kind: str) -> set[str]:
    return {element.key for element in at.get(kind) if getattr(element, "key", None)}


def test_a_room_draws_only_its_open_tab():
    at = open_page(FF)  # the first tab, Evaluation, is open
    assert "ff_eval" in at.session_state  # its predictions were made
    assert not keys_of(at, "button") & {"ff_twin_button", "ff_landscape_go", "ff_step_all"}
    assert "ff_landscape_grid" not in keys_of(at, "slider")
    open_tab(at, FF, "Landscape")
    assert "ff_landscape_grid" in keys_of(at, "slider")
    assert "ff_confusion_chart" not in keys_of(at, "plotly_chart")  # Evaluation is closed now


def test_a_room_opened_on_another_tab_predicts_nothing():
    at = open_page(CNN, tab="Model file")
    assert "cnn_eval" not in at.session_state
    assert not [image for image in at.get("image") if "feature maps" in " ".join(image.captions)]


def test_a_closed_tabs_settings_are_there_when_it_opens_again():
    at = open_page(FF, tab="Landscape")
    at.slider(key="ff_landscape_grid").set_value(11)
    at.number_input(key="ff_landscape_digits").set_value(500).run()
    open_tab(at, FF, "Evaluation")
    at.run()  # a rerun with the landscape still closed: Streamlit would forget its widgets here
    open_tab(at, FF, "Landscape")
    assert at.slider(key="ff_landscape_grid").value == 11
    assert at.number_input(key="ff_landscape_digits").value == 500


@pytest.mark.parametrize(("page", "set_control", "read_control"), [
    (FF, lambda at: at.number_input(key="ff_learning_rate").set_value(0.05),
     lambda at: at.number_input(key="ff_learning_rate").value == 0.05),
    (CNN, lambda at: at.text_input(key="cnn_filters").set_value("4, 8"),
     lambda at: at.text_input(key="cnn_filters").value == "4, 8"),
    ("pages/autodiff.py", lambda at: at.text_input(key="ad_formula").set_value("x*y"),
     lambda at: at.text_input(key="ad_formula").value == "x*y"),
])
def test_a_page_left_and_come_back_to_keeps_its_controls(
        page: str, set_control: Callable, read_control: Callable):
    """Issue 27: a room's controls went back to their defaults when the learner left it."""
    at = open_page(page)
    set_control(at).run()
    at.switch_page(SKETCH).run()
    at.run()  # a second rerun away: the first one alone would still hold the old value
    at.switch_page(page).run()
    assert_calm(at)
    assert read_control(at)


@pytest.mark.slow
@pytest.mark.parametrize("page", [FF, CNN, SKETCH])
def test_no_kept_widget_is_also_given_a_default(page, monkeypatch):
    """A kept widget takes its default from the session: one drawn with `value=` as well would
    make Streamlit warn (in its log) on every rerun that keeps it. Every tab, twice."""
    warned: list[str] = []
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    monkeypatch.setattr(policies._LOGGER, "warning",
                        lambda message, *args, **kwargs: warned.append(message % args))
    at = open_page(page)
    at.session_state[canvas_key(PREFIXES[page])] = canvas_state(mnist_on_canvas(mnist_digit(7)))
    labels = [tab.label for tab in at.run().tabs]
    assert len(labels) >= 4, labels
    for label in labels:
        open_tab(at, page, label).run()
        assert_calm(at)
    assert not warned, warned
