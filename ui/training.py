"""Background training runs for any page: a thread per run, a server-wide queue, a live panel.

    run = start_run(lambda stop: ffnn.training_run(config, split, stop=stop))
    st.session_state["ff_run"] = run      # survives page switches; the thread keeps going
    live_panel(run, key="ff", draw_snapshot=...)

The thread never calls `st.*`: it only writes the latest `engine.train.Progress` into the
lock-guarded `Run`. The panel is an `st.fragment` that re-reads the run every half second while
it is active and reruns the whole page once when it ends. A server-wide semaphore (size
`engine.settings.limits().max_concurrent_runs`) caps simultaneous runs; the others wait in a
queue and the panel shows their place in it.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import streamlit as st

from engine.settings import limits
from engine.train import Progress
from ui import charts

REFRESH_SECONDS = 0.5

_SLOTS = threading.BoundedSemaphore(limits().max_concurrent_runs)
_QUEUE: list[Run] = []  # runs waiting for a slot, oldest first
_QUEUE_LOCK = threading.Lock()
_IDS = itertools.count(1)


@dataclass(frozen=True)
class RunView:
    """A consistent copy of a run's state, for drawing.

    status: "queued", "running", then "finished", "stopped", "diverged" or "failed".
    latest: the last Progress event (None before the first). message: why it ended (or the
    error). queue_position: 1-based place in the queue while queued.
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
    """One training run in its own thread. Read it with `view()`, end it with `stop()`."""

    def __init__(self, make_events: Callable[[threading.Event], Iterable[Progress]]) -> None:
        self.id = next(_IDS)
        self._make_events = make_events
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._status = "queued"
        self._latest: Progress | None = None
        self._message = ""
        self.thread = threading.Thread(target=self._work, name=f"training-run-{self.id}",
                                       daemon=True)

    def view(self) -> RunView:
        with self._lock:
            status, latest, message = self._status, self._latest, self._message
        position = None
        if status == "queued":
            with _QUEUE_LOCK:
                position = _QUEUE.index(self) + 1 if self in _QUEUE else None
        return RunView(self.id, status, latest, message, position)

    def stop(self) -> None:
        """Ask the run to end; it does between two chunks of steps (well within a second)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread has ended (for tests and shutdown); True if it has."""
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _set(self, **fields) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self, f"_{name}", value)

    def _work(self) -> None:
        with _QUEUE_LOCK:
            _QUEUE.append(self)
        acquired = False
        try:
            while not acquired:
                if self._stop.is_set():
                    self._set(status="stopped", message="Stopped while waiting for its turn.")
                    return
                acquired = _SLOTS.acquire(timeout=0.1)
            with _QUEUE_LOCK:
                _QUEUE.remove(self)
            self._set(status="running")
            for event in self._make_events(self._stop):
                self._set(latest=event)
            final = self._latest
            self._set(status=final.status if final else "failed",
                      message=final.message if final else "The run produced no result.")
        except Exception as error:  # shown to the user, instead of dying silently in a thread
            self._set(status="failed", message=f"Training failed: {error}")
        finally:
            with _QUEUE_LOCK:
                if self in _QUEUE:
                    _QUEUE.remove(self)
            if acquired:
                _SLOTS.release()


def start_run(make_events: Callable[[threading.Event], Iterable[Progress]]) -> Run:
    """Start `make_events(stop)` (an iterable of Progress) in a new thread; it queues for a slot."""
    run = Run(make_events)
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
                f"{limits().max_concurrent_runs} models at a time.", icon="⏳")
        return
    event = view.latest
    if event is None:
        st.progress(0.0, text="Starting (compiling the first steps)…")
    else:
        st.progress(min(1.0, event.step / max(1, event.total_steps)), text=progress_text(event))
    if view.status == "finished":
        st.success(view.message, icon="✅")
    elif view.status == "stopped":
        st.info(view.message, icon="⏹️")
    elif view.status in ("diverged", "failed"):
        st.error(view.message, icon="⚠️")


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


def live_panel(run: Run, *, key: str,
               draw_snapshot: Callable[[object, str], None] | None = None) -> RunView:
    """Draw the run's status, curves and (via draw_snapshot(snapshot, key)) its latest snapshot.

    While the run is active this is a fragment refreshed every REFRESH_SECONDS; when the run
    ends, the whole page reruns once so everything that depends on the result updates. Other
    widgets stay usable meanwhile. Returns the view drawn first.
    """
    first = run.view()

    @st.fragment(run_every=REFRESH_SECONDS if first.active else None)
    def panel() -> None:
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
