"""Faults around background training: the queue (first come, first served; nobody starves), a
training thread that raises (its own session only), a visitor who leaves (the run stops itself)."""

import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import ffnn, runs
from engine.data import embedded_dataset
from engine.train import History, Progress
from ui import training

ROOT = Path(__file__).resolve().parents[1]
TINY = ffnn.TrainingConfig(ffnn.Architecture((8,)), epochs=1, batch_size=256, backend="autodiff")
BOUND = 60  # s: generous bound for a thread to end (never a speed claim, only "it ends")


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_RUNS_DIR", str(tmp_path / "runs"))


def progress(step: int, total: int = 1000, status: str = "running") -> Progress:
    return Progress(step, total, step / total, 1, 1.0, None, None, 0.0, 0.0, History(),
                    status=status, message=f"ended at {step}" if status != "running" else "")


def held(release: threading.Event):
    """A run's events: one, then nothing until released (or stopped), then it finishes."""

    def make(stop: threading.Event):
        yield progress(1)
        while not (release.is_set() or stop.is_set()):
            time.sleep(0.01)
        yield progress(2, status="finished")

    return make


def ticking(stop: threading.Event):
    """A run's events: one every 20 ms until stopped (as a real training loop checks `stop`)."""
    step = 0
    while not stop.is_set():
        step += 1
        yield progress(step)
        time.sleep(0.02)
    yield progress(step, status="stopped")


def tiny_training(started: list[int], number: int):
    """A real, tiny feed-forward run (~0.2 s) that notes when it got its turn."""

    def make(stop: threading.Event):
        started.append(number)
        return ffnn.training_run(TINY, embedded_dataset().split, stop=stop)

    return make


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


# --- the queue ----------------------------------------------------------------------------------


def test_queued_runs_start_in_order_and_all_finish():
    """Both slots held; five real runs queue behind, in order; one leaves the queue when
    stopped and the others move up; released, every remaining run runs, first come first
    served."""
    release = threading.Event()
    holders = [training.start_run(held(release)) for _ in range(training._SLOTS)]
    started: list[int] = []
    try:
        wait_until(lambda: all(r.view().status == "running" for r in holders), "slots taken")
        queued = [training.start_run(tiny_training(started, i)) for i in range(5)]
        wait_until(lambda: [r.view().queue_position for r in queued] == [1, 2, 3, 4, 5],
                   "five places in the queue")
        # The live panels redraw less often when seven runs share two slots.
        assert training.refresh_seconds(queued[0].view()) == training.REFRESH_SECONDS * 7 / 2
        assert training.refresh_seconds(holders[0].view()) == training.REFRESH_SECONDS * 7 / 2
        queued[2].stop()
        assert queued[2].wait(BOUND)
        assert queued[2].view().status == "stopped"
        assert "waiting for its turn" in queued[2].view().message
        assert [r.view().queue_position for r in queued] == [1, 2, None, 3, 4]
    finally:
        release.set()
    assert all(r.wait(BOUND) for r in holders + queued)
    assert started == [0, 1, 3, 4]
    assert training.refresh_seconds(queued[0].view()) is None  # ended: no more redraws
    assert [r.view().status for r in queued] == ["finished"] * 2 + ["stopped"] + ["finished"] * 2
    assert all(r.view().latest.params is not None for r in queued if r is not queued[2])
    assert not training._QUEUE and not training._RUNNING  # every slot given back


def test_many_runs_at_once_all_finish_never_more_than_the_slots_at_a_time():
    peak, running = [0], [0]
    lock = threading.Lock()

    def counted(stop: threading.Event):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            yield from ffnn.training_run(TINY, embedded_dataset().split, stop=stop)
        finally:
            with lock:
                running[0] -= 1

    many = [training.start_run(counted) for _ in range(8)]
    assert all(r.wait(BOUND) for r in many)
    assert [r.view().status for r in many] == ["finished"] * 8
    assert peak[0] == training._SLOTS


# --- a training thread that raises ------------------------------------------------------------


def failing(stop: threading.Event):
    yield progress(1)
    raise FloatingPointError("the matrix caught fire")


def test_a_run_that_raises_fails_alone_and_frees_its_slot(caplog):
    bad = training.start_run(failing)
    good = training.start_run(lambda stop: ffnn.training_run(TINY, embedded_dataset().split,
                                                             stop=stop))
    assert bad.wait(BOUND) and good.wait(BOUND)
    view = bad.view()
    assert view.status == "failed" and not view.active
    assert "FloatingPointError: the matrix caught fire" in view.message
    assert "Nothing else is affected" in view.message
    assert good.view().status == "finished"
    assert "training run" in caplog.text and "the matrix caught fire" in caplog.text  # logged
    # Its slot came back: as many runs as there are slots can still run after it.
    after = [training.start_run(lambda stop: ffnn.training_run(TINY, embedded_dataset().split,
                                                               stop=stop))
             for _ in range(training._SLOTS)]
    assert all(r.wait(BOUND) and r.view().status == "finished" for r in after)


def feedforward() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/feedforward.py").run()
    return at


def test_a_failed_run_shows_its_error_in_its_own_session_only():
    broken, healthy = feedforward(), feedforward()
    broken.session_state["ff_run"] = training.start_run(failing)
    healthy.text_input(key="ff_hidden").set_value("8")
    healthy.number_input(key="ff_epochs").set_value(1)
    healthy.radio(key="ff_backend").set_value("autodiff")
    healthy.button(key="ff_start").click().run()
    assert broken.session_state["ff_run"].wait(BOUND)
    assert healthy.session_state["ff_run"].wait(BOUND)
    broken.run()
    healthy.run()
    assert not broken.exception and not healthy.exception
    assert "the matrix caught fire" in " ".join(e.value for e in broken.error)
    assert "the default model" in " ".join(m.value for m in broken.markdown)  # page still works
    assert not healthy.error
    assert "Finished 1 epochs" in " ".join(s.value for s in healthy.success)
    assert "your model (784-8-10" in " ".join(m.value for m in healthy.markdown)


# --- a visitor who leaves ---------------------------------------------------------------------


def test_a_run_nobody_watches_stops_itself_as_abandoned(monkeypatch):
    monkeypatch.setenv("GLASSBOX_ABANDON_SECONDS", "1")
    watched, unwatched = training.start_run(ticking), training.start_run(ticking)
    stop_watching = threading.Event()

    def watch() -> None:  # what the live panel does each time it draws
        while not stop_watching.is_set():
            watched.touch()
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert unwatched.wait(BOUND)
        view = unwatched.view()
        assert view.status == "abandoned"
        assert "nobody had watched it for 1 s" in view.message
        assert "model so far is kept" in view.message
        assert watched.view().status == "running"  # touched all along: still going
    finally:
        stop_watching.set()
        watcher.join()
    assert watched.wait(BOUND) and watched.view().status == "abandoned"  # once nobody looks


def test_a_queued_run_nobody_watches_leaves_the_queue(monkeypatch):
    release = threading.Event()
    holders = [training.start_run(held(release)) for _ in range(training._SLOTS)]
    try:
        wait_until(lambda: all(r.view().status == "running" for r in holders), "slots taken")
        monkeypatch.setenv("GLASSBOX_ABANDON_SECONDS", "1")
        waiting = training.start_run(ticking)
        assert waiting.wait(BOUND)
        assert waiting.view().status == "abandoned"
        assert waiting not in training._QUEUE
    finally:
        release.set()
    assert all(r.wait(BOUND) for r in holders)


def test_an_abandoned_run_is_saved_as_abandoned(monkeypatch):
    monkeypatch.setenv("GLASSBOX_ABANDON_SECONDS", "1")
    config = ffnn.TrainingConfig(ffnn.Architecture((8,)), epochs=50, batch_size=32,
                                 backend="autodiff")
    run = training.start_run(
        lambda stop: ffnn.training_run(config, embedded_dataset().split, stop=stop),
        kind="ffnn", model_file=lambda params, **info: ffnn.checkpoint_bytes(
            config.arch, params, training=config.to_metadata(), **info))
    assert run.wait(BOUND)
    assert run.view().status == "abandoned"
    _, params, metadata = ffnn.read_checkpoint(runs.read_run(run.token))
    assert metadata["run"]["status"] == "abandoned"
    assert runs.progress_from_metadata(metadata["run"], params).step < 50 * (3700 // 32)


def test_the_page_is_the_heartbeat():
    """Each draw of the live panel touches the run, and so does the session-wide heartbeat the
    router calls on every page (`keep_runs_alive`)."""
    release = threading.Event()
    run = training.start_run(held(release))
    try:
        at = feedforward()
        at.session_state["ff_run"] = run
        before = run._last_seen
        at.run()
        assert run._last_seen > before
        elsewhere = AppTest.from_string("from ui.training import keep_runs_alive\n"
                                        "keep_runs_alive()\n")
        elsewhere.session_state["some_run"] = run
        before = run._last_seen
        elsewhere.run()
        assert run._last_seen > before
    finally:
        release.set()
    assert run.wait(BOUND)
