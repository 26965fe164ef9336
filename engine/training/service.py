"""The run service: training runs in background threads, a queue with a capacity, heartbeats,
abandonment, and saving and restoring ended runs. It knows nothing of Streamlit.

    service = RunService(slots=2, abandon_seconds=30)
    run = service.start(lambda stop: ffnn.training_run(config, split, stop=stop), kind="ffnn")
    run.touch()          # a heartbeat: somebody still watches the run
    run.view().latest    # the latest engine.training.loop.Progress; the last carries a model

The app holds one service per server (`st.cache_resource`); every test makes its own. A run's
thread never calls the UI: it writes the latest event into its lock-guarded `Run`, and a page
reads `run.view()`. At most `slots` runs train at once; the others wait, first come first
served. A run nobody touches for `abandon_seconds` stops itself ("abandoned"), keeping its model.
An ended run is saved under its unguessable token (`engine.training.runs`), from which `restore`
brings it back after a reload.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from engine.models.files import model_file, model_from_bytes
from engine.models.model import Model
from engine.training import runs
from engine.training.loop import Progress
from engine.training.status import ACTIVE, USABLE, RunStatus

log = logging.getLogger(__name__)

class RunEvent(Protocol):
    """What the service reads of a run's events: a training run's `Progress`, a landscape
    job's `LandscapeEvent` (frozen dataclasses: the service copies the last one with a new
    status and message when a run is abandoned). model: the ready model of the last event of
    a training run (None for a job that makes none)."""

    step: int
    total_steps: int
    status: RunStatus
    message: str
    model: Model | None


MakeEvents = Callable[[threading.Event], Iterable[RunEvent]]
QUEUE_POLL_SECONDS = 0.1  # how often a queued run checks whether it was stopped or abandoned


@dataclass(frozen=True)
class RunView:
    """A consistent copy of a run's state, for drawing.

    status: queued, running, then finished, stopped, diverged, abandoned (nobody watched it for
    the service's abandon_seconds) or failed. latest: the last event (None before the first).
    message: why it ended (or the error). queue_position: 1-based place in the queue while
    queued.
    """

    id: int
    token: str
    kind: str
    status: RunStatus
    latest: RunEvent | None
    message: str
    queue_position: int | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def model(self) -> Model | None:
        """The ready model of an ended run (None while it is active or when it made none)."""
        return None if self.active or self.latest is None else self.latest.model

    @property
    def usable(self) -> bool:
        """Whether the ended run trained a model worth offering elsewhere (the sketch lab): it
        ended by itself or by a stop, after at least one step; not a diverged or failed run."""
        return (self.status in USABLE and self.model is not None
                and self.latest is not None and self.latest.step > 0)


class Run:
    """One training run in its own thread. Read it with `view()`, end it with `stop()`.

    id: a small number, unique in its service (for widget keys). token: the public, unguessable
    run id (`engine.training.runs.new_run_id`) that a page's URL carries. kind: what it trains
    (a family's kind, "ffnn", "cnn"; "landscape" for a landscape job), so a link opens only in
    its own room. settings: its training settings as metadata (`TrainingConfig.to_metadata()`),
    so a restored run sets its room's controls back. While it
    is active, somebody must `touch()` it at least every abandon_seconds; otherwise its visitor
    has left and it stops itself.
    """

    def __init__(self, service: RunService, run_id: int, make_events: MakeEvents, kind: str,
                 token: str, settings: Mapping[str, Any]) -> None:
        self.id = run_id
        self.token = token
        self.kind = kind
        self.settings = settings
        self._service = service
        self._make_events = make_events
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._status = RunStatus.QUEUED
        self._latest: RunEvent | None = None
        self._message = ""
        self._last_seen = service.clock()
        self._abandoned = False
        self.thread = threading.Thread(target=self._work, name=f"training-run-{self.id}",
                                       daemon=True)

    def view(self) -> RunView:
        with self._lock:
            status, latest, message = self._status, self._latest, self._message
        position = self._service.queue_position(self) if status == RunStatus.QUEUED else None
        return RunView(self.id, self.token, self.kind, status, latest, message, position)

    def stop(self) -> None:
        """Ask the run to end; it does between two chunks of steps (well within a second)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def show_ended(self, event: RunEvent) -> None:
        """Make this (never started) run an ended one whose last event was `event`: a saved run
        brought back."""
        self._set(status=event.status, latest=event, message=event.message)

    def touch(self) -> None:
        """Somebody is watching: postpone abandoning the run."""
        with self._lock:
            self._last_seen = self._service.clock()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread has ended (for tests and shutdown); True if it has."""
        if self.thread.ident is not None:
            self.thread.join(timeout)
        return not self.thread.is_alive()

    def _set(self, **fields) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self, f"_{name}", value)

    def abandon_if_unwatched(self) -> bool:
        """Stop the run if nobody has touched it for too long; True if it is abandoned."""
        with self._lock:
            unwatched = self._service.clock() - self._last_seen > self._service.abandon_seconds
        if unwatched and not self._abandoned:
            self._abandoned = True
            self._stop.set()
        return self._abandoned

    def _train(self) -> None:
        for event in self._make_events(self._stop):
            self._set(latest=event)
            self.abandon_if_unwatched()
        final = self._latest
        if final is None:
            self._set(status=RunStatus.FAILED, message="The run produced no result.")
        elif self._abandoned:
            message = (f"Stopped at step {final.step} of {final.total_steps}: nobody had watched "
                       f"it for {self._service.abandon_seconds:g} s (the page was closed). Its "
                       "model so far is kept.")
            self._set(status=RunStatus.ABANDONED, message=message,
                      latest=replace(final, status=RunStatus.ABANDONED, message=message))
        else:
            self._set(status=RunStatus(final.status), message=final.message)

    def _work(self) -> None:
        if not self._service.wait_for_turn(self):
            status = RunStatus.ABANDONED if self._abandoned else RunStatus.STOPPED
            self._set(status=status, message=(
                "Left the queue: nobody was watching it any more." if self._abandoned
                else "Stopped while waiting for its turn."))
            return
        try:
            self._set(status=RunStatus.RUNNING)
            self._train()
        except Exception as error:  # shown to its own session; the server carries on
            log.exception("training run %s failed", self.id)
            self._set(status=RunStatus.FAILED, message=(
                f"Training failed with an internal error ({type(error).__name__}: {error}). "
                "Nothing else is affected: change a setting or press Start to try again."))
        finally:
            self._service.release(self)
        self._service.save(self.view())


class RunService:
    """Training runs of one server: the queue, the running set, the live runs by token, and the
    folder where ended runs are saved (None: `engine.training.runs.runs_folder()` at save time).

    clock: seconds, monotonic; tests pass a fake one to abandon a run without waiting.
    """

    def __init__(self, *, slots: int, abandon_seconds: float, folder: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if slots < 1:
            raise ValueError(f"a run service needs at least one slot, got {slots}")
        self.slots = slots
        self.abandon_seconds = abandon_seconds
        self.folder = folder
        self.clock = clock
        self._ids = itertools.count(1)
        self._turns = threading.Condition()
        self._queue: list[Run] = []  # waiting for a slot, oldest first
        self._running: list[Run] = []
        # Every run by its token as long as someone holds it: a session lost mid-run (a reload)
        # finds its run again here.
        self._live: weakref.WeakValueDictionary[str, Run] = weakref.WeakValueDictionary()

    def start(self, make_events: MakeEvents, *, kind: str,
              settings: Mapping[str, Any] | None = None) -> Run:
        """Start `make_events(stop)` (an iterable of Progress) in a new thread; it queues for a
        slot. The run is saved when it ends if its last event carries a model."""
        run = Run(self, next(self._ids), make_events, kind, runs.new_run_id(),
                  dict(settings or {}))
        self._live[run.token] = run
        run.thread.start()
        return run

    def queue_position(self, run: Run) -> int | None:
        with self._turns:
            return self._queue.index(run) + 1 if run in self._queue else None

    def load(self) -> float:
        """Active runs per slot (at least 1): how busy the server's training is."""
        with self._turns:
            return max(1.0, (len(self._queue) + len(self._running)) / self.slots)

    def counts(self) -> tuple[int, int]:
        """(queued, running) right now."""
        with self._turns:
            return len(self._queue), len(self._running)

    def wait_for_turn(self, run: Run) -> bool:
        """Queue until first in line with a free slot (True), or stopped meanwhile (False)."""
        with self._turns:
            self._queue.append(run)
            try:
                while self._queue[0] is not run or len(self._running) >= self.slots:
                    if run.abandon_if_unwatched() or run.stop_requested:
                        return False
                    self._turns.wait(timeout=QUEUE_POLL_SECONDS)  # also woken by starts, ends
                self._running.append(run)
                return True
            finally:
                self._queue.remove(run)
                self._turns.notify_all()  # the next in line may go now

    def release(self, run: Run) -> None:
        """The run's slot is free again."""
        with self._turns:
            self._running.remove(run)
            self._turns.notify_all()

    def save(self, view: RunView) -> None:
        """Save an ended run's model file under its token, for a reload to bring back."""
        if view.model is None:
            return
        try:
            runs.save_run(view.token, run_file(view.latest), self.folder)
        except Exception:  # the run itself is fine and on screen; only a reload will miss it
            log.exception("could not save training run %s", view.id)

    def restore(self, token: str, kind: str) -> Run:
        """The run `token` of this kind: still in memory (a session lost mid-run), else from its
        saved file. Raises RunIdError, RunNotFoundError, RunFileError or CheckpointError."""
        live = self._live.get(runs.check_run_id(token))
        if live is None:
            event = read_run_file(runs.read_run(token, self.folder), kind)
            training = event.model.metadata.get("training")
            live = Run(self, next(self._ids), lambda stop: (), kind, token,
                       training if isinstance(training, dict) else {})
            live.show_ended(event)
        _check_kind(live.kind, kind)
        return live


def _check_kind(found: str, wanted: str) -> None:
    if found != wanted:
        raise runs.RunNotFoundError(f"It was trained in another room (a {found!r} model): open "
                                    "the link there.")


def run_file(event: Progress) -> bytes:
    """The model file of a run that ended with `event`: its model, with the run's record."""
    metrics = {"test_accuracy": event.test_accuracy, "val_accuracy": event.val_accuracy}
    return model_file(event.model, metrics=metrics, run=runs.run_metadata(event))


def read_run_file(data: bytes, kind: str | None = None) -> Progress:
    """The last event of a saved run, its model attached. Raises CheckpointError, RunFileError,
    or RunNotFoundError when it holds a model of another kind than `kind` (if given)."""
    model = model_from_bytes(data)
    if kind is not None:
        _check_kind(model.kind, kind)
    event = runs.progress_from_metadata(model.metadata.get("run"),
                                        model.family.read_snapshot)
    return replace(event, model=model)
