"""Faults around background training as a visitor meets them (AppTest): a training thread that
raises shows its error in its own session only, and the page is the run's heartbeat.

The service itself (queue, slots, abandonment, saving) is tested without Streamlit in
test_service.py.
"""

import threading

import pytest
from helpers import FakeClock, assert_calm, open_page
from streamlit.testing.v1 import AppTest

from engine.training.service import RunService
from ui.rooms.state import RoomState

BOUND = 60  # s: generous bound for a thread to end (never a speed claim, only "it ends")
pytestmark = pytest.mark.usefixtures("runs_dir")


def failing(stop: threading.Event):
    raise FloatingPointError("the matrix caught fire")
    yield  # a generator, as a training run is


def held(release: threading.Event):
    """A run that yields nothing until released (or stopped)."""

    def make(stop: threading.Event):
        while not (release.wait(0.01) or stop.is_set()):
            pass
        yield from ()

    return make


@pytest.mark.slow
def test_a_failed_run_shows_its_error_in_its_own_session_only(clock: FakeClock, tmp_path):
    service = RunService(slots=1, abandon_seconds=30, folder=tmp_path, clock=clock)
    broken, healthy = open_page("pages/feedforward.py"), open_page("pages/feedforward.py")
    run = service.start(failing, kind="ffnn")
    assert run.wait(BOUND)
    broken.session_state["ff_room"] = RoomState(run=run)
    broken.run()
    healthy.run()
    assert_calm(broken)
    assert_calm(healthy)
    assert "the matrix caught fire" in " ".join(e.value for e in broken.error)
    assert "Nothing else is affected" in " ".join(e.value for e in broken.error)
    assert "the matrix caught fire" not in " ".join(e.value for e in healthy.error)


def heartbeat_check(at: AppTest, run, clock: FakeClock) -> None:
    """With the held `run` in the session's FFNN room, a script run of `at` at 100 s (long past
    abandon_seconds) touches it; 100 s later without one, it is abandoned."""
    at.session_state["ff_room"] = RoomState(run=run)
    clock.now = 100.0
    at.run()
    assert_calm(at)
    assert not run.abandon_if_unwatched()  # touched at 100 s
    clock.now = 200.0
    assert run.abandon_if_unwatched()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["the room's live panel", "the router's heartbeat"])
def test_the_page_is_the_heartbeat(where: str, clock: FakeClock, tmp_path):
    """The room's live panel, and on every page the router's `keep_runs_alive`, touch the
    session's active run: a visitor who keeps a page open is never abandoned.

    The router's call is checked on its own: in AppTest a `run_every` fragment of a
    multipage app's entry script runs on the first script run only."""
    release = threading.Event()
    service = RunService(slots=1, abandon_seconds=30, folder=tmp_path, clock=clock)
    run = service.start(held(release), kind="ffnn")
    try:
        heartbeat = "from ui.rooms.adoption import keep_runs_alive\nkeep_runs_alive()\n"
        at = (open_page("pages/feedforward.py") if where == "the room's live panel" else
              AppTest.from_string(heartbeat))
        heartbeat_check(at, run, clock)
    finally:
        release.set()
    assert run.wait(BOUND)
