"""Saved training runs: unguessable run ids, one validated model file per run, size and age caps.

A run that ends is saved as `<run id>.npz` in the runs folder (env GLASSBOX_RUNS_DIR, default
~/.cache/glassbox/runs). The file is the room's own model file (parameters, architecture and
training settings, read without pickle and validated by the room's `read_checkpoint`) whose
metadata also carries the run itself under "run" (`run_metadata`: how it ended and its history),
so a reload of the page with `?run=<id>` brings back the curves and a usable model.

A run id is `secrets.token_urlsafe(16)`, 128 random bits: knowing it is what entitles one to see
the run, and nobody can guess another visitor's. Ids are matched against a strict pattern before
they come near a path, and the caps only ever delete files whose names are run ids.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.app.settings import Limits, limits
from engine.models.checkpoint import write_atomically
from engine.training.loop import History, Progress
from engine.training.status import ENDED, RunStatus

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")  # what token_urlsafe(16) gives
RUNS_DIR_ENV = "GLASSBOX_RUNS_DIR"
DEFAULT_RUNS_DIR = Path.home() / ".cache" / "glassbox" / "runs"
SUFFIX = ".npz"
STALE_TEMP_SECONDS = 3600  # a temp file this old is a crashed save, never a save in progress


class RunIdError(ValueError):
    """A run id that is not one this app could have made (the text of a link was damaged)."""


class RunNotFoundError(LookupError):
    """A well-formed run id with no saved run: never saved here, or removed by the caps."""


class RunFileError(ValueError):
    """A saved run's record is damaged."""


def new_run_id() -> str:
    """A fresh, unguessable run id: 22 URL-safe characters (128 random bits)."""
    return secrets.token_urlsafe(16)


def check_run_id(text: object) -> str:
    """text, if it is a well-formed run id; else RunIdError (the id is not echoed: it is input)."""
    if not isinstance(text, str) or not RUN_ID_PATTERN.fullmatch(text):
        raise RunIdError("This link's run id is malformed: a run id is 22 letters, digits, "
                         "'-' or '_'. Check that the whole link was copied.")
    return text


def runs_folder() -> Path:
    """Where runs are saved: env GLASSBOX_RUNS_DIR, else ~/.cache/glassbox/runs."""
    return Path(os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR)


def run_path(run_id: str, folder: Path | None = None) -> Path:
    """The file of run `run_id` (checked, so the path stays inside the folder)."""
    return (folder or runs_folder()) / f"{check_run_id(run_id)}{SUFFIX}"


# --- the run inside the model file's metadata ----------------------------------------------------


def _finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: a loss that is not a number is stored as null."""
    return None if value is None or not math.isfinite(value) else float(value)


def run_metadata(event: Progress) -> dict[str, Any]:
    """The JSON-serialisable record of a run that ended with `event` (its last Progress).

    Snapshots are kept when they can be written as a record (`to_record()`: the CNN's filters
    and answers, a few KB); the feed-forward net's (first-layer weights, MBs) are not.
    """
    history = event.history
    snapshots = history.snapshots if all(hasattr(s, "to_record") for s in history.snapshots) \
        else ()
    return {
        "status": event.status, "message": event.message, "step": event.step,
        "total_steps": event.total_steps, "epoch": event.epoch, "epochs": event.epochs,
        "loss": _finite_or_none(event.loss), "elapsed": event.elapsed,
        "val_accuracy": event.val_accuracy, "test_accuracy": event.test_accuracy,
        "history": {"losses": [_finite_or_none(v) for v in history.losses],
                    "eval_steps": list(history.eval_steps),
                    "train_accuracy": list(history.train_accuracy),
                    "val_accuracy": list(history.val_accuracy),
                    "test_accuracy": list(history.test_accuracy),
                    "snapshot_steps": list(history.snapshot_steps[-len(snapshots):]
                                           if snapshots else ()),
                    "snapshots": [s.to_record() for s in snapshots]},
        "saved_at": time.time(),
    }


def _count(value: Any, limit: float = math.inf) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ValueError(f"{value!r} is not a count")
    return value


def _number(value: Any, *, optional: bool = False) -> float:
    if value is None and optional:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _fraction(value: Any) -> float | None:
    if value is None:
        return None
    number = _number(value)
    if not 0 <= number <= 1:
        raise ValueError(f"{value!r} is not an accuracy")
    return number


def _numbers(values: Any, parse) -> tuple:
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise ValueError("not a list")
    return tuple(parse(v) for v in values)


def progress_from_metadata(record: Any,
                           read_snapshot: Callable[[Any], Any] | None = None) -> Progress:
    """The last Progress of a saved run, from its `run_metadata` record (no model: the caller
    attaches the one read from the same file). read_snapshot: a snapshot's record -> the
    snapshot (raising ValueError for a bad one); without it, no snapshots are read.

    Every field is checked (types, ranges, consistent lengths); RunFileError if any is off.
    """
    try:
        if record["status"] not in ENDED:
            raise ValueError(f"unknown status {record['status']!r}")
        status = RunStatus(record["status"])
        total_steps = _count(record["total_steps"])
        history = record["history"]
        eval_steps = _numbers(history["eval_steps"], lambda v: _count(v, total_steps))
        accuracies = (_numbers(history["val_accuracy"], _fraction),
                      _numbers(history["test_accuracy"], _fraction))
        train_accuracy = _numbers(history.get("train_accuracy", []), _fraction)  # newer runs
        losses = _numbers(history["losses"], lambda v: _number(v, optional=True))
        lengths_agree = ({len(accuracies[0]), len(accuracies[1])} == {len(eval_steps)}
                         and len(train_accuracy) in (0, len(eval_steps))
                         and len(losses) <= total_steps)
        if not lengths_agree or None in (*accuracies[0], *accuracies[1], *train_accuracy):
            raise ValueError("the history's lengths do not agree")
        message = record["message"]
        if not isinstance(message, str):
            raise ValueError("the message is not text")
        snapshot_steps, snapshots = _snapshots(history, read_snapshot, total_steps)
        return Progress(
            step=_count(record["step"], total_steps), total_steps=total_steps,
            epoch=_number(record["epoch"]), epochs=_count(record["epochs"]),
            loss=_number(record["loss"], optional=True),
            val_accuracy=_fraction(record["val_accuracy"]),
            test_accuracy=_fraction(record["test_accuracy"]),
            elapsed=_number(record["elapsed"]), eta=0.0,
            history=History(losses, eval_steps, *accuracies, snapshot_steps, snapshots,
                            train_accuracy),
            status=status, message=message)
    except (KeyError, TypeError, ValueError) as error:
        raise RunFileError(f"This run's saved record is damaged ({error}).") from None


def _snapshots(history: Any, read_snapshot: Callable[[Any], Any] | None, total_steps: int
               ) -> tuple[tuple[int, ...], tuple]:
    """(steps, snapshots) from a history record; ValueError/KeyError/TypeError if malformed."""
    if read_snapshot is None or not history.get("snapshots"):
        return (), ()
    steps = _numbers(history["snapshot_steps"], lambda v: _count(v, total_steps))
    snapshots = _numbers(history["snapshots"], read_snapshot)
    if len(steps) != len(snapshots):
        raise ValueError("the snapshots' lengths do not agree")
    return steps, snapshots


# --- the folder ------------------------------------------------------------------------------


def save_run(run_id: str, model_file: bytes, folder: Path | None = None,
             caps: Limits | None = None) -> Path:
    """Write a run's model file atomically, then apply the folder's caps; the file's path."""
    path = run_path(run_id, folder)
    write_atomically(path, model_file)
    caps = caps or limits()
    prune_runs(path.parent, caps.max_saved_runs_mb * 2**20, caps.max_saved_run_days * 86400,
               keep=path)
    return path


def read_run(run_id: str, folder: Path | None = None) -> bytes:
    """The saved model file of run `run_id`. RunIdError if the id is malformed,
    RunNotFoundError if no such run is saved."""
    path = run_path(run_id, folder)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RunNotFoundError("No saved run has this id: it was never saved on this server, "
                               "or it was removed (runs are kept for "
                               f"{limits().max_saved_run_days} days, and the oldest go first "
                               "when the folder is full).") from None
    except OSError as error:
        raise RunNotFoundError(f"This run cannot be read ({error.strerror}).") from None


def _is_run_file(path: Path) -> bool:
    return path.suffix == SUFFIX and bool(RUN_ID_PATTERN.fullmatch(path.stem))


def _is_temp_file(path: Path) -> bool:
    """A temp file of `write_atomically` for a run: `.<run id>.npz.<random>.tmp`."""
    name = path.name
    return (name.startswith(".") and name.endswith(".tmp")
            and bool(RUN_ID_PATTERN.fullmatch(name[1:23])) and name[23:27] == SUFFIX)


def prune_runs(folder: Path, max_bytes: int, max_age_seconds: float, *,
               keep: Path | None = None, now: float | None = None) -> list[Path]:
    """Delete saved runs older than max_age_seconds, then the oldest until the rest fit in
    max_bytes, and temp files of crashed saves; never `keep`, never a file whose name is not a
    run's. Returns what was deleted."""
    now = time.time() if now is None else now
    runs: list[tuple[float, int, Path]] = []
    deleted: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return deleted
    for path in entries:
        try:
            info = path.stat()
        except OSError:
            continue  # removed meanwhile by another thread's pruning
        if _is_temp_file(path) and now - info.st_mtime > STALE_TEMP_SECONDS:
            deleted.append(path)
        elif _is_run_file(path) and path != keep:
            if now - info.st_mtime > max_age_seconds:
                deleted.append(path)
            else:
                runs.append((info.st_mtime, info.st_size, path))
    total = sum(size for _, size, _ in runs) + (keep.stat().st_size if keep and keep.exists()
                                                 else 0)
    for _, size, path in sorted(runs):  # oldest first
        if total <= max_bytes:
            break
        deleted.append(path)
        total -= size
    for path in deleted:
        path.unlink(missing_ok=True)
    return deleted
