"""Background training runs for any page: a thread per run, a server-wide queue, a live panel.

    run = start_run(lambda stop: ffnn.training_run(config, split, stop=stop))
    st.session_state["ff_run"] = run      # survives page switches; the thread keeps going
    live_panel(run, key="ff", draw_snapshot=...)

The thread never calls `st.*`: it only writes the latest `engine.train.Progress` into the
lock-guarded `Run`. The panel is an `st.fragment` that re-reads the run every half second while
it is active and reruns the whole page once when it ends. At most
`engine.settings.limits().max_concurrent_runs` runs train at once on the server; the others wait
in a first-come, first-served queue and the panel shows their place in it.

Reliability: a run that raises ends "failed" with a sentence in its own session only; a run
nobody watches any more (its browser is gone: no heartbeat from `live_panel` or
`keep_runs_alive` for `limits().abandon_seconds`) stops itself as "abandoned". An ended run is
saved under its unguessable id (`engine.runs`), which the page's URL carries (?run=...);
`restore_run` brings it back after a reload, from memory while it is still going.
"""

from __future__ import annotations

import itertools
import logging
import math
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import streamlit as st

from engine import runs
from engine.checkpoint import CheckpointError
from engine.settings import limits
from engine.train import Progress
from ui import charts

REFRESH_SECONDS = 0.5
RUN_PARAM = "run"  # the URL's query parameter holding the page's run id
RUN_IDS_SEEN = "run_ids_seen"  # session state: run ids this session has shown or tried

log = logging.getLogger(__name__)

# Training threads and script runs take the GIL from the server's event loop, which answers
# health checks and websockets. A shorter switch interval (Python's default: 5 ms) hands it back
# sooner: in the load test, worst health latency ~1.1 s -> ~0.6 s on 2 busy cores.
SWITCH_INTERVAL_SECONDS = 0.001
sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

# The queue: a run starts when it is first in line and one of the slots is free, so runs start
# in the order they were asked for and none waits forever. _TURNS guards both lists.
_SLOTS = limits().max_concurrent_runs
_TURNS = threading.Condition()
_QUEUE: list[Run] = []  # runs waiting for a slot, oldest first
_RUNNING: list[Run] = []
_IDS = itertools.count(1)
# Every run of this server by its public id, as long as someone holds it: a session lost
# mid-run (a reload) finds its run again here.
_LIVE: weakref.WeakValueDictionary[str, Run] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class RunView:
    """A consistent copy of a run's state, for drawing.

    status: "queued", "running", then "finished", "stopped", "diverged", "abandoned" (nobody
    watched it for `limits().abandon_seconds`) or "failed". latest: the last Progress event
    (None before the first). message: why it ended (or the error). queue_position: 1-based
    place in the queue while queued.
    """

    id: int
    status: str
    latest: Progress | None
    message: str
    queue_position: int | None

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


class Run:
    """One training run in its own thread. Read it with `view()`, end it with `stop()`.

    id: a small number, unique in this server (for widget keys). token: the public,
    unguessable run id (`engine.runs.new_run_id`) that the page's URL carries. kind: the
    model's kind ("ffnn", "cnn"), so a link opens only in its own room. context: what the
    page keeps beside the run in session state, so a restored session gets it back.
    While it is active, somebody must `touch()` the run at least every
    `limits().abandon_seconds` (the live panel does, each time it draws): otherwise its
    visitor has left, and the run stops itself as "abandoned".
    """

    def __init__(self, make_events: Callable[[threading.Event], Iterable[Progress]], *,
                 kind: str = "", model_file: Callable[..., bytes] | None = None,
                 context: dict[str, Any] | None = None) -> None:
        self.id = next(_IDS)
        self.token = runs.new_run_id()
        self.kind = kind
        self.context = dict(context or {})
        self._make_events = make_events
        self._model_file = model_file
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._status = "queued"
        self._latest: Progress | None = None
        self._message = ""
        self._abandon_after = limits().abandon_seconds
        self._last_seen = time.monotonic()
        self._abandoned = False
        self.thread = threading.Thread(target=self._work, name=f"training-run-{self.id}",
                                       daemon=True)

    @classmethod
    def ended(cls, token: str, kind: str, event: Progress) -> Run:
        """A run that ended before this server process saw it (restored from its saved file):
        no thread, its last event as it was saved."""
        run = cls(lambda stop: (), kind=kind)
        run.token = token
        run._status, run._latest, run._message = event.status, event, event.message
        return run

    def view(self) -> RunView:
        with self._lock:
            status, latest, message = self._status, self._latest, self._message
        position = None
        if status == "queued":
            with _TURNS:
                position = _QUEUE.index(self) + 1 if self in _QUEUE else None
        return RunView(self.id, status, latest, message, position)

    def stop(self) -> None:
        """Ask the run to end; it does between two chunks of steps (well within a second)."""
        self._stop.set()

    def touch(self) -> None:
        """Somebody is watching: postpone abandoning the run."""
        with self._lock:
            self._last_seen = time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread has ended (for tests and shutdown); True if it has."""
        if self.thread.ident is not None:
            self.thread.join(timeout)
        return not self.thread.is_alive()

    def _set(self, **fields) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self, f"_{name}", value)

    def _abandon_if_unwatched(self) -> bool:
        """Stop the run if nobody has touched it for too long; True if it is abandoned."""
        with self._lock:
            unwatched = time.monotonic() - self._last_seen > self._abandon_after
        if unwatched and not self._abandoned:
            self._abandoned = True
            self._stop.set()
        return self._abandoned

    def _wait_for_turn(self) -> bool:
        """Queue until first in line with a free slot (True), or stopped meanwhile (False)."""
        with _TURNS:
            _QUEUE.append(self)
            try:
                while _QUEUE[0] is not self or len(_RUNNING) >= _SLOTS:
                    if self._abandon_if_unwatched() or self._stop.is_set():
                        return False
                    _TURNS.wait(timeout=0.1)  # also woken by every start and end
                _RUNNING.append(self)
                return True
            finally:
                _QUEUE.remove(self)
                _TURNS.notify_all()  # the next in line may go now

    def _train(self) -> None:
        for event in self._make_events(self._stop):
            self._set(latest=event)
            self._abandon_if_unwatched()
        final = self._latest
        if final is None:
            self._set(status="failed", message="The run produced no result.")
        elif self._abandoned:
            self._set(status="abandoned", message=(
                f"Stopped at step {final.step} of {final.total_steps}: nobody had watched it for "
                f"{self._abandon_after} s (the page was closed). Its model so far is kept."))
        else:
            self._set(status=final.status, message=final.message)

    def _save(self) -> None:
        """Save the ended run's model file under its token, for a reload to bring back."""
        view = self.view()
        if self._model_file is None or view.latest is None or view.latest.params is None:
            return
        try:
            event = view.latest
            if view.status != event.status:  # e.g. abandoned: the record says how it ended
                event = replace(event, status=view.status, message=view.message)
            metrics = {"test_accuracy": event.test_accuracy, "val_accuracy": event.val_accuracy}
            runs.save_run(self.token, self._model_file(event.params, metrics=metrics,
                                                       run=runs.run_metadata(event)))
        except Exception:  # the run itself is fine and on screen; only a reload will miss it
            log.exception("could not save training run %s", self.id)

    def _work(self) -> None:
        if not self._wait_for_turn():
            self._set(status="abandoned" if self._abandoned else "stopped", message=(
                "Left the queue: nobody was watching it any more." if self._abandoned
                else "Stopped while waiting for its turn."))
            return
        try:
            self._set(status="running")
            self._train()
        except Exception as error:  # shown to its own session; the server carries on
            log.exception("training run %s failed", self.id)
            self._set(status="failed", message=(
                f"Training failed with an internal error ({type(error).__name__}: {error}). "
                "Nothing else is affected: change a setting or press Start to try again."))
        finally:
            with _TURNS:
                _RUNNING.remove(self)
                _TURNS.notify_all()
        self._save()


def start_run(make_events: Callable[[threading.Event], Iterable[Progress]], *, kind: str = "",
              model_file: Callable[..., bytes] | None = None,
              context: dict[str, Any] | None = None) -> Run:
    """Start `make_events(stop)` (an iterable of Progress) in a new thread; it queues for a slot.

    kind: the model's kind ("ffnn", "cnn"). model_file(params, metrics=..., run=record) ->
    bytes: the run's model file with its final accuracies and `record` (see
    `engine.runs.run_metadata`) in its metadata; given it, the run is saved when it ends, so
    that a reload of its page brings it back (`restore_run`).
    context: session-state entries that go with the run (put back when it is restored).
    """
    run = Run(make_events, kind=kind, model_file=model_file, context=context)
    _LIVE[run.token] = run
    run.thread.start()
    return run


def format_seconds(seconds: float) -> str:
    """"42 s" or "3 min 05 s"."""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def progress_text(event: Progress) -> str:
    """E.g. "Epoch 3 of 10 · step 84/280 · loss 0.301 · test 91.2% · 2 s elapsed, about 5 s
    left"."""
    parts = [f"Epoch {max(1, math.ceil(event.epoch))} of {event.epochs}",
             f"step {event.step}/{event.total_steps}", f"loss {event.loss:.3f}"]
    if event.test_accuracy is not None:
        parts.append(f"test {event.test_accuracy:.1%}")
    timing = f"{format_seconds(event.elapsed)} elapsed"
    if not event.done:
        timing += f", about {format_seconds(event.eta)} left"
    return " · ".join([*parts, timing])


def show_status(view: RunView) -> None:
    """The run's state in words: queue place, progress bar, or how it ended."""
    if view.status == "queued":
        place = f" (number {view.queue_position} in the queue)" if view.queue_position else ""
        st.info(f"Waiting for a free training slot{place}: this server trains "
                f"{limits().max_concurrent_runs} models at a time.",
                icon=":material/hourglass_top:")
        return
    event = view.latest
    if event is None:
        st.progress(0.0, text="Starting (compiling the first steps)…")
    else:
        st.progress(min(1.0, event.step / max(1, event.total_steps)), text=progress_text(event))
    if view.status == "finished":
        st.success(view.message, icon=":material/check_circle:")
    elif view.status == "stopped":
        st.info(view.message, icon=":material/stop_circle:")
    elif view.status in ("diverged", "failed"):
        st.error(view.message, icon=":material/warning:")
    elif view.status == "abandoned":
        st.warning(view.message, icon=":material/pause_circle:")


def show_curves(event: Progress, key: str) -> None:
    """Loss and accuracy curves side by side (plotly, stable keys)."""
    steps_per_epoch = max(1, event.total_steps // max(1, event.epochs))
    history = event.history
    left, right = st.columns(2)
    left.plotly_chart(charts.loss_curve_figure(history.losses, steps_per_epoch, event.epochs),
                      key=f"{key}_loss_chart", width="stretch")
    right.plotly_chart(charts.accuracy_curve_figure(history.eval_steps, history.val_accuracy,
                                                    history.test_accuracy, steps_per_epoch,
                                                    event.epochs),
                       key=f"{key}_accuracy_chart", width="stretch")


def refresh_seconds(view: RunView) -> float | None:
    """How often the live panel redraws this run: never once it has ended, else every
    REFRESH_SECONDS, stretched when more runs than slots are active on the server (then some
    wait in the queue). Each redraw builds every chart again: a busy server makes fewer of them
    and stays responsive (measured by the load test)."""
    if not view.active:
        return None
    with _TURNS:
        active = len(_QUEUE) + len(_RUNNING)
    return REFRESH_SECONDS * max(1.0, active / _SLOTS)


def live_panel(run: Run, *, key: str,
               draw_snapshot: Callable[[object, str], None] | None = None) -> RunView:
    """Draw the run's status, curves and (via draw_snapshot(snapshot, key)) its latest snapshot.

    While the run is active this is a fragment refreshed every `refresh_seconds`; when the
    run ends, the whole page reruns once so everything that depends on the result updates.
    Other widgets stay usable meanwhile. Each draw is the run's heartbeat (`Run.touch`), and
    the page's URL carries the run's id (?run=...) so that a reload brings it back. Returns
    the view drawn first.
    """
    first = run.view()
    show_run_in_url(run)

    @st.fragment(run_every=refresh_seconds(first))
    def panel() -> None:
        run.touch()
        view = run.view()
        show_status(view)
        if view.latest is not None:
            show_curves(view.latest, key)
            if draw_snapshot is not None and view.latest.snapshot is not None:
                draw_snapshot(view.latest.snapshot, key)
        if first.active and not view.active:
            st.rerun()

    panel()
    return first


# --- heartbeat and reloads ---------------------------------------------------------------------


def keep_runs_alive() -> None:
    """The session's heartbeat, on every page: while any of its runs is active, touch them
    all every third of the abandon timeout. Once the browser is gone nothing reruns this
    fragment, and the runs stop themselves (see `Run`)."""
    active = [value for value in st.session_state.values()
              if isinstance(value, Run) and value.view().active]
    if not active:
        return

    @st.fragment(run_every=max(1.0, limits().abandon_seconds / 3))
    def heartbeat() -> None:
        for run in active:
            run.touch()

    heartbeat()


def _seen() -> set[str]:
    """The run ids this session has shown in its URL or tried to restore."""
    return st.session_state.setdefault(RUN_IDS_SEEN, set())


def show_run_in_url(run: Run) -> None:
    """Put the run's id in the page's URL (?run=...), where a reload or a bookmark finds it."""
    _seen().add(run.token)
    if st.query_params.get(RUN_PARAM) != run.token:
        st.query_params[RUN_PARAM] = run.token


@dataclass(frozen=True)
class Restored:
    """A run brought back by the URL. model: (architecture, params, metadata), read and
    validated from the run's saved file; None when the run was still in this server's memory
    (then the page's context for it is back in session state too)."""

    run: Run
    model: tuple[Any, dict[str, Any], dict[str, Any]] | None


def restore_run(key: str, kind: str, read_model_file: Callable[[bytes], tuple]
                ) -> Restored | None:
    """Bring back into st.session_state[key] the run of this kind named by the URL's ?run=.

    Call it at the top of the page. Does something only for an id this session has not seen
    yet (a reload, a bookmark): a run still going on this server (a session lost mid-run),
    else the run's saved file, read by read_model_file (the room's `read_checkpoint`). A
    malformed, unknown or damaged run, or one of another room, gets an st.warning saying so
    and leaves the URL. An id this session has seen but no longer holds under `key` (after
    Reset, or another room's) is taken out of the URL.
    """
    state = st.session_state
    wanted = st.query_params.get(RUN_PARAM)
    current = state.get(key)
    if wanted is None or (current is not None and current.token == wanted):
        return None
    if wanted in _seen():
        del st.query_params[RUN_PARAM]
        return None
    _seen().add(wanted)
    try:
        restored = _restored(runs.check_run_id(wanted), kind, read_model_file)
    except (runs.RunIdError, runs.RunNotFoundError, runs.RunFileError, CheckpointError) as error:
        st.warning(f"Cannot bring back the training run of this link. {error}",
                   icon=":material/link_off:")
        del st.query_params[RUN_PARAM]
        return None
    state[key] = restored.run
    if restored.model is None:
        state.update(restored.run.context)
    return restored


def _restored(token: str, kind: str, read_model_file: Callable[[bytes], tuple]) -> Restored:
    """The run `token` from this server's memory or from its saved file (CheckpointError,
    RunFileError, RunNotFoundError if it cannot be)."""
    live = _LIVE.get(token)
    if live is not None:
        if live.kind != kind:
            raise runs.RunNotFoundError(f"It was trained in another room (a {live.kind!r} "
                                        "model): open the link there.")
        return Restored(live, None)
    architecture, params, metadata = read_model_file(runs.read_run(token))
    event = runs.progress_from_metadata(metadata.get("run"), params)
    return Restored(Run.ended(token, kind, event), (architecture, params, metadata))


def stop_session_run(run_key: str) -> None:
    """Stop the session's run kept under `run_key`, if there is one."""
    if run_key in st.session_state:
        st.session_state[run_key].stop()


def run_buttons(cells: list, *, prefix: str, start_label: str, reset: Callable[[], None],
                reset_help: str) -> bool:
    """Start, Stop and Reset in three cells (keys <prefix>start/stop/reset); True on Start.

    Stop ends the run kept in st.session_state["<prefix>run"].
    """
    start = cells[0].button(start_label, type="primary", icon=":material/play_arrow:",
                            key=f"{prefix}start", width="stretch")
    cells[1].button("Stop", icon=":material/stop:", key=f"{prefix}stop", width="stretch",
                    on_click=stop_session_run, args=(f"{prefix}run",))
    cells[2].button("Reset", icon=":material/restart_alt:", key=f"{prefix}reset",
                    width="stretch", on_click=reset, help=reset_help)
    return start



def refused(run_key: str, problems: list[str]) -> bool:
    """Whether a new run may NOT start: `problems`, or this room's run in
    st.session_state[run_key] still going. Each reason is shown with st.error."""
    if run_key in st.session_state and st.session_state[run_key].view().active:
        problems = [*problems, "A run is already going: stop it first."]
    for problem in problems:
        st.error(problem)
    return bool(problems)
