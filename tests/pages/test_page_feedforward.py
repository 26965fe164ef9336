"""The feed-forward room in AppTest: train, watch, stop, diverge, refuse; and the run queue."""

import re
import time
from collections.abc import Iterator

import pytest
from helpers import (
    ROOT,
    canvas_state,
    leave_no_run,
    messages,
    mnist_digit,
    mnist_on_canvas,
    open_page,
    open_tab,
    room_run,
)
from helpers import run_until_done as until_done
from streamlit.testing.v1 import AppTest

from engine import ffnn
from ui.sketch import canvas_key

PAGE = "pages/feedforward.py"


@pytest.fixture
def at() -> Iterator[AppTest]:
    app = open_page(PAGE)
    # Tiny settings: a few seconds of training at most.
    app.text_input(key="ff_hidden").set_value("16")
    app.number_input(key="ff_epochs").set_value(2)
    yield app
    leave_no_run(app, "ff_room")


def run_of(at: AppTest):
    return room_run(at, "ff_room")


def run_until_done(at: AppTest, bound: int = 200) -> list[str]:
    return until_done(at, "ff_room", bound)


def test_a_short_run_shows_progress_and_becomes_the_model(at):
    backend = "jax"  # the autodiff backend drives the page in the stop test below
    at.button(key="ff_start").click().run()
    texts = run_until_done(at)
    assert not at.exception, [e.value for e in at.exception]
    assert any("Epoch" in t and "step" in t for t in texts)
    assert "Finished 2 epochs" in messages(at.success)
    assert "your feed-forward net (784-16-10, relu" in messages(at.markdown)
    assert at.metric[0].value.endswith("%")
    trained = at.session_state["trained_models"][f"ffnn-{backend}"]  # offered to the sketch lab
    assert trained.architecture.hidden == (16,)


def test_progress_shows_mid_run_and_stop_ends_the_run_keeping_its_model(at):
    at.radio(key="ff_backend").set_value("autodiff")
    at.number_input(key="ff_epochs").set_value(50)
    at.button(key="ff_start").click().run()
    for _ in range(100):
        if run_of(at).view().latest is not None:
            break
        time.sleep(0.1)
    at.run()
    (progress,) = at.get("progress")
    assert re.search(r"Epoch \d+ of 50 · step \d+/\d+", progress.proto.text)
    assert "left" in progress.proto.text  # the ETA
    assert len(at.get("plotly_chart")) >= 3  # the live curves and weights
    assert not at.button(key="ff_stop").disabled  # running: it can be stopped
    at.button(key="ff_stop").click().run()
    run_until_done(at, bound=20)
    assert run_of(at).view().status == "stopped"
    assert "Stopped" in messages(at.info)
    assert "your feed-forward net" in messages(at.markdown)
    assert at.button(key="ff_stop").disabled  # issue 27: nothing left to stop


def test_stop_is_offered_only_while_there_is_a_run_to_stop(at):
    assert at.button(key="ff_stop").disabled  # no run yet
    at.number_input(key="ff_epochs").set_value(1)
    at.button(key="ff_start").click().run()
    assert not at.button(key="ff_stop").disabled  # the run Start began
    run_until_done(at)
    assert at.button(key="ff_stop").disabled


def test_a_huge_learning_rate_stops_with_the_reason(at):
    at.selectbox(key="ff_optimizer").set_value("sgd")
    at.number_input(key="ff_learning_rate").set_value(10_000.0)
    at.number_input(key="ff_epochs").set_value(20)
    at.button(key="ff_start").click().run()
    run_until_done(at)
    assert not at.exception
    assert "learning rate is probably too high" in messages(at.error)
    assert "the last good one, is kept" in messages(at.error)
    # Issue 26: the progress line and the loss chart show the blow-up, not "step 0 · loss nan".
    seen = len(run_of(at).view().latest.history.losses)
    assert seen >= 1 and f"stopped at step {seen}/" in at.get("progress")[0].proto.text
    loss_chart = next(c for c in at.get("plotly_chart") if c.key == "ff_live_loss_chart")
    assert "lines+markers" in loss_chart.proto.spec  # a few points, each one drawn


@pytest.mark.parametrize(("hidden", "reason"), [("5000", "over this server's limit"),
                                                ("1000,1000", "weights and biases is over"),
                                                ("64,x", "whole numbers")])
def test_a_run_over_the_limits_or_with_bad_layers_is_refused(at, hidden, reason):
    at.text_input(key="ff_hidden").set_value(hidden)
    at.button(key="ff_start").click().run()
    assert reason in messages(at.error)
    assert run_of(at) is None


def test_the_run_survives_a_page_switch(at):
    at.number_input(key="ff_epochs").set_value(3)
    at.button(key="ff_start").click().run()
    run = run_of(at)
    at.switch_page("pages/home.py").run()
    at.switch_page(PAGE).run()
    assert run_of(at) is run
    run_until_done(at)
    assert "Finished 3 epochs" in messages(at.success)


def test_the_shift_augmentation_reaches_the_run_and_reset_turns_it_off(at):
    at.slider(key="ff_shift").set_value(2)
    at.button(key="ff_start").click().run()
    run_until_done(at)
    assert not at.exception, [e.value for e in at.exception]
    assert run_of(at).settings["max_shift"] == 2
    assert run_of(at).view().model.metadata["training"]["max_shift"] == 2
    at.button(key="ff_reset").click().run()
    assert at.slider(key="ff_shift").value == 0


def test_reset_forgets_the_model_and_restores_the_controls(at):
    # A run long enough to be still going when Reset is pressed (a cached compile makes the
    # tiny default one finish within a rerun).
    at.radio(key="ff_backend").set_value("autodiff")
    at.number_input(key="ff_epochs").set_value(50)
    at.button(key="ff_start").click().run()
    run = run_of(at)
    at.button(key="ff_reset").click().run()
    assert run.wait(10) and run.view().status == "stopped"
    assert at.text_input(key="ff_hidden").value == "256"
    assert at.number_input(key="ff_epochs").value == 10
    assert "the default model" in messages(at.markdown)
    assert run_of(at) is None


def test_a_sketched_digit_is_read_by_the_default_model(at):
    open_tab(at, PAGE, "Sketch a digit")
    at.session_state[canvas_key("ff")] = canvas_state(mnist_on_canvas(mnist_digit(7)))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    titles = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert any("It reads a 7" in spec for spec in titles)
    assert "the default model" in messages(at.markdown)


def test_the_sketched_digit_shows_where_the_net_looks_when_asked(at):
    open_tab(at, PAGE, "Sketch a digit")
    at.session_state[canvas_key("ff")] = canvas_state(mnist_on_canvas(mnist_digit(7)))
    at.run()
    assert not [c for c in at.get("plotly_chart") if c.key == "ff_attribution"]  # off at first
    at.toggle(key="ff_attribution_on").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    (chart,) = [c.proto.spec for c in at.get("plotly_chart") if c.key == "ff_attribution"]
    assert "Integrated Gradients" in chart
    (check,) = [d.value for d in at.dataframe if "explained digit" in d.value.columns]
    assert list(check["explained digit"]) == [7]  # the net's own top guess


def test_the_page_starts_from_the_engine_defaults(at):
    """benchmarks' T1 times ffnn.TrainingConfig(): the untouched controls start exactly that run
    (the controls are seeded from it, not from a copy)."""
    fresh = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    fresh.switch_page(PAGE).run()
    fresh.button(key="ff_start").click().run()
    run = run_of(fresh)
    run.stop()
    assert run.wait(30)
    assert run.settings == ffnn.TrainingConfig().to_metadata()


def test_continuing_keeps_the_model_and_disables_what_does_not_apply(at):
    """Issue 18, item 13: with Continue ticked the layer boxes are disabled and a bad value left
    in them is not held against the run (it was refused before)."""
    at.text_input(key="ff_hidden").set_value("64,x")
    at.checkbox(key="ff_continue").check().run()
    assert at.text_input(key="ff_hidden").disabled
    assert at.selectbox(key="ff_activation").disabled
    at.number_input(key="ff_epochs").set_value(1)
    at.button(key="ff_start").click().run()
    assert not at.error, messages(at.error)
    assert "Continuing from the default model" in messages(at.info)
    run_until_done(at)
    assert run_of(at).settings["arch"]["hidden"] == [256]  # the default model's layers
    # Its help says the curves count from 0 again: one epoch's steps, not added to any before.
    assert "count from 0" in at.checkbox(key="ff_continue").help
    latest = run_of(at).view().latest
    assert len(latest.history.losses) == latest.total_steps == latest.step


def test_the_twin_check_gives_a_verdict_against_the_float32_tolerance(at):
    """Issue 18, item 12: the note states the tolerance, and the check says pass or fail."""
    open_tab(at, PAGE, "Twin-engine check")
    at.button(key="ff_twin_button").click().run()
    assert not at.exception
    assert "Pass: the largest difference" in messages(at.success)
    assert "1e-04" in messages(at.markdown) or "0.0001" in messages(at.markdown)


def test_the_weight_grid_says_how_many_units_it_shows(at):
    at.text_input(key="ff_hidden").set_value("100")
    at.number_input(key="ff_epochs").set_value(1)
    at.button(key="ff_start").click().run()
    run_until_done(at)
    titles = " ".join(chart.proto.spec for chart in at.get("plotly_chart"))
    assert "64 of 100 units: what each looks for" in titles


def block_path(at: AppTest, kind: str) -> tuple[int, ...]:
    """The position of the first block of `kind` ("tab_container", ...) in the page's tree."""

    def walk(node, path):
        if getattr(node, "type", None) == kind:
            return path
        for index, child in getattr(node, "children", {}).items():
            found = walk(child, (*path, index))
            if found is not None:
                return found
        return None

    found = walk(at.main, ())
    assert found is not None, f"no {kind} on the page"
    return found


def test_nothing_moves_when_a_run_starts_or_ends(at):
    """Issue 18, item 3: an element that came and went with a run (the heartbeat's fragment, a
    message, the live panel) shifted every element after it, and the browser reset them (open
    tabs back to the first, drawings blanked). The tabs stay where they are."""
    before = block_path(at, "tab_container")
    at.number_input(key="ff_epochs").set_value(1)
    at.button(key="ff_start").click().run()
    assert block_path(at, "tab_container") == before  # the run just started
    at.run()
    assert block_path(at, "tab_container") == before  # running (or ended meanwhile)
    run_until_done(at)
    assert block_path(at, "tab_container") == before  # ended
    at.text_input(key="ff_hidden").set_value("64,x")
    at.button(key="ff_start").click().run()
    assert "whole numbers" in messages(at.error)
    assert block_path(at, "tab_container") == before  # refused, with a message


def test_a_finished_run_reaches_the_sketch_lab_wherever_the_learner_is(at):
    """Issue 18, item 4: the lab picks up a new model without a visit to its room. The router
    adopts ended runs on every rerun (the heartbeat reruns it when a run ends); AppTest runs a
    switched-to page without the router, so the test runs the router itself, as the browser
    does."""
    at.number_input(key="ff_epochs").set_value(1)
    at.button(key="ff_start").click().run()
    run = run_of(at)
    at.switch_page("pages/sketch.py").run()
    assert run.wait(60)
    at.switch_page("streamlit_app.py").run()  # the router: the home page, not the room
    assert at.session_state["trained_models"]["ffnn-jax"] is at.session_state["ff_room"].model
    assert at.session_state["ff_room"].adopted == run.id


def test_a_diverged_run_does_not_replace_the_default_in_the_sketch_lab(at):
    """Issue 18, item 4: only a usable model replaces a default."""
    at.selectbox(key="ff_optimizer").set_value("sgd")
    at.number_input(key="ff_learning_rate").set_value(10_000.0)
    at.button(key="ff_start").click().run()
    run_until_done(at)
    assert run_of(at).view().status == "diverged"
    at.switch_page("streamlit_app.py").run()  # the router adopts it, as above
    assert at.session_state["ff_room"].adopted == run_of(at).id
    assert "trained_models" not in at.session_state or (
        "ffnn-jax" not in at.session_state["trained_models"])


def test_a_rerun_that_keeps_the_model_predicts_the_test_digits_once(at):
    """The Evaluation tab's predictions are kept per model: a widget's rerun (here the hidden
    layers' box, which changes no model until Start) reuses them; a new model replaces them."""
    kept = at.session_state["ff_eval"]
    at.text_input(key="ff_hidden").set_value("32").run()
    assert at.session_state["ff_eval"] is kept
    at.radio(key="ff_backend").set_value("autodiff").run()  # the other default model
    assert at.session_state["ff_eval"][0] is not kept[0]
    assert not at.exception
