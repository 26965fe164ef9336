"""The feed-forward room in AppTest: train, watch, stop, diverge, refuse; and the run queue."""

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import canvas_state, mnist_digit, mnist_on_canvas
from streamlit.testing.v1 import AppTest

from engine import ffnn
from engine.train import History, Progress
from ui import training
from ui.sketch import canvas_key
from ui.state import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/feedforward.py"


@pytest.fixture
def at() -> Iterator[AppTest]:
    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    app.switch_page(PAGE).run()
    assert not app.exception, [e.value for e in app.exception]
    # Tiny settings: a few seconds of training at most.
    app.text_input(key="ff_hidden").set_value("16")
    app.number_input(key="ff_epochs").set_value(2)
    yield app
    if "ff_run" in app.session_state:  # never leave a training thread behind
        app.session_state["ff_run"].stop()
        assert app.session_state["ff_run"].wait(10)


def run_until_done(at: AppTest, bound: int = 200) -> list[str]:
    """Drive the live fragment (one pass per .run()) until the run ends; the progress texts."""
    texts = []
    for _ in range(bound):
        at.run()
        texts += [p.proto.text for p in at.get("progress")]
        if not at.session_state["ff_run"].view().active:
            at.run()  # the page after the run: evaluation of the new model
            return texts + [p.proto.text for p in at.get("progress")]
        time.sleep(0.1)
    raise AssertionError(f"the run did not end within {bound} refreshes")


def messages(elements) -> str:
    return " ".join(e.value for e in elements)


def test_a_short_run_shows_progress_and_becomes_the_model(at):
    backend = "jax"  # the autodiff backend drives the page in the stop test below
    at.button(key="ff_start").click().run()
    texts = run_until_done(at)
    assert not at.exception, [e.value for e in at.exception]
    assert any("Epoch" in t and "step" in t for t in texts)
    assert "Finished 2 epochs" in messages(at.success)
    assert "your model (784-16-10, relu" in messages(at.markdown)
    assert at.metric[0].value.endswith("%")
    trained = at.session_state["trained_models"][f"ffnn-{backend}"]  # offered to the sketch lab
    assert trained.architecture.hidden == (16,)


def test_progress_shows_mid_run_and_stop_ends_the_run_keeping_its_model(at):
    at.radio(key="ff_backend").set_value("autodiff")
    at.number_input(key="ff_epochs").set_value(50)
    at.button(key="ff_start").click().run()
    for _ in range(100):
        if at.session_state["ff_run"].view().latest is not None:
            break
        time.sleep(0.1)
    at.run()
    (progress,) = at.get("progress")
    assert re.search(r"Epoch \d+ of 50 · step \d+/\d+", progress.proto.text)
    assert "left" in progress.proto.text  # the ETA
    assert len(at.get("plotly_chart")) >= 3  # the live curves and weights
    at.button(key="ff_stop").click().run()
    run_until_done(at, bound=20)
    assert at.session_state["ff_run"].view().status == "stopped"
    assert "Stopped" in messages(at.info)
    assert "your model" in messages(at.markdown)


def test_a_huge_learning_rate_stops_with_the_reason(at):
    at.selectbox(key="ff_optimizer").set_value("sgd")
    at.number_input(key="ff_learning_rate").set_value(10_000.0)
    at.number_input(key="ff_epochs").set_value(20)
    at.button(key="ff_start").click().run()
    run_until_done(at)
    assert not at.exception
    assert "learning rate is probably too high" in messages(at.error)
    assert "the last good one, is kept" in messages(at.error)


@pytest.mark.parametrize(("hidden", "reason"), [("5000", "over this server's limit"),
                                                ("64,x", "whole numbers")])
def test_a_run_over_the_limits_or_with_bad_layers_is_refused(at, hidden, reason):
    at.text_input(key="ff_hidden").set_value(hidden)
    at.button(key="ff_start").click().run()
    assert reason in messages(at.error)
    assert "ff_run" not in at.session_state


def test_the_run_survives_a_page_switch(at):
    at.number_input(key="ff_epochs").set_value(3)
    at.button(key="ff_start").click().run()
    run = at.session_state["ff_run"]
    at.switch_page("pages/home.py").run()
    at.switch_page(PAGE).run()
    assert at.session_state["ff_run"] is run
    run_until_done(at)
    assert "Finished 3 epochs" in messages(at.success)


def test_reset_forgets_the_model_and_restores_the_controls(at):
    # A run long enough to be still going when Reset is pressed (a cached compile makes the
    # tiny default one finish within a rerun).
    at.radio(key="ff_backend").set_value("autodiff")
    at.number_input(key="ff_epochs").set_value(50)
    at.button(key="ff_start").click().run()
    run = at.session_state["ff_run"]
    at.button(key="ff_reset").click().run()
    assert run.wait(10) and run.view().status == "stopped"
    assert at.text_input(key="ff_hidden").value == "256"
    assert at.number_input(key="ff_epochs").value == 10
    assert "the default model" in messages(at.markdown)
    assert "ff_run" not in at.session_state


def test_a_sketched_digit_is_read_by_the_default_model(at):
    at.session_state[canvas_key("ff")] = canvas_state(mnist_on_canvas(mnist_digit(7)))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    titles = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert any("It reads a 7" in spec for spec in titles)
    assert "the default model" in messages(at.markdown)


def test_the_page_defaults_are_the_engine_defaults():
    """benchmarks' T1 times ffnn.TrainingConfig(); the page must start from the same settings."""
    config = ffnn.TrainingConfig()
    assert (DEFAULTS["ff_hidden"], DEFAULTS["ff_activation"]) == ("256", config.arch.activation)
    assert ffnn.parse_hidden(DEFAULTS["ff_hidden"]) == config.arch.hidden
    assert (DEFAULTS["ff_loss"], DEFAULTS["ff_optimizer"], DEFAULTS["ff_learning_rate"],
            DEFAULTS["ff_batch_size"], DEFAULTS["ff_epochs"], DEFAULTS["ff_backend"]) == (
        config.loss, config.optimizer, config.learning_rate, config.batch_size, config.epochs,
        config.backend)


def blocking_events(release: threading.Event):
    """A fake model's events: one progress event, then wait until released (or stopped)."""

    def make(stop: threading.Event):
        history = History()
        yield Progress(1, 2, 0.5, 1, 1.0, None, None, 0.0, 0.0, history)
        while not (release.is_set() or stop.is_set()):
            time.sleep(0.01)
        yield Progress(2, 2, 1.0, 1, 0.5, None, None, 0.0, 0.0, history, status="finished")

    return make


def test_runs_beyond_the_concurrency_limit_wait_in_line():
    release = threading.Event()
    limit = training.limits().max_concurrent_runs
    runs = [training.start_run(blocking_events(release)) for _ in range(limit + 1)]
    try:
        deadline = time.monotonic() + 10
        while sum(r.view().status == "running" for r in runs) < limit:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        waiting = runs[-1].view()
        assert waiting.status == "queued" and waiting.queue_position == 1
        runs[-1].stop()
        assert runs[-1].wait(5)
        assert runs[-1].view().status == "stopped"
    finally:
        release.set()
    assert all(r.wait(5) for r in runs)
    assert [r.view().status for r in runs[:-1]] == ["finished"] * limit
