"""The Streamlit side of training runs: the server's run service, the live panel, the run buttons.

    run = run_service().start(lambda stop: ffnn.training_run(config, split, stop=stop),
                              kind="ffnn", settings=config.to_metadata())
    live_panel(run, key="ff_live", draw_snapshot=...)

The runs themselves live in `engine.training.service` (threads, queue, heartbeats, saving), which
knows nothing of Streamlit; this module draws them. The live panel is an `st.fragment` that re-reads
its run every half second while it is active (each draw is the run's heartbeat) and reruns the
whole page once when it ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import streamlit as st

from engine.app.settings import limits
from engine.training.loop import Progress
from engine.training.service import Run, RunService, RunView
from engine.training.status import RunStatus
from ui.figures import charts

REFRESH_SECONDS = 0.5


@st.cache_resource(show_spinner=False)
def run_service() -> RunService:
    """The server's one run service, sized by `engine.app.settings.limits()` at start-up."""
    settings = limits()
    return RunService(slots=settings.max_concurrent_runs,
                      abandon_seconds=settings.abandon_seconds)


def format_seconds(seconds: float) -> str:
    """"42 s" or "3 min 05 s"."""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def progress_text(event: Progress) -> str:
    """E.g. "Epoch 3 of 10 · step 84/280 · loss 0.301 · test 91.2% · 2 s elapsed, about 5 s
    left"; a diverged run says where its loss blew up, and to what."""
    parts = [f"Epoch {max(1, math.ceil(event.epoch))} of {event.epochs}",
             f"step {event.step}/{event.total_steps}", f"loss {event.loss:.3f}"]
    if event.status == RunStatus.DIVERGED and event.history.losses:
        parts[1:] = [f"stopped at step {len(event.history.losses)}/{event.total_steps}: the "
                     f"loss blew up, to {event.history.losses[-1]:.3g}"]
    if event.test_accuracy is not None:
        parts.append(f"test {event.test_accuracy:.1%}")
    timing = f"{format_seconds(event.elapsed)} elapsed"
    if not event.done:
        timing += f", about {format_seconds(event.eta)} left"
    return " · ".join([*parts, timing])


def show_status(view: RunView) -> None:
    """The run's state in words: queue place, progress bar, or how it ended."""
    if view.status == RunStatus.QUEUED:
        place = f" (number {view.queue_position} in the queue)" if view.queue_position else ""
        st.info(f"Waiting for a free training slot{place}: this server trains "
                f"{run_service().slots} models at a time.", icon=":material/hourglass_top:")
        return
    event = view.latest
    if event is None:
        st.progress(0.0, text="Starting (compiling the first steps)…")
    else:
        st.progress(min(1.0, event.step / max(1, event.total_steps)), text=progress_text(event))
    if view.status == RunStatus.FINISHED:
        st.success(view.message, icon=":material/check_circle:")
    elif view.status == RunStatus.STOPPED:
        st.info(view.message, icon=":material/stop_circle:")
    elif view.status in (RunStatus.DIVERGED, RunStatus.FAILED):
        st.error(view.message, icon=":material/warning:")
    elif view.status == RunStatus.ABANDONED:
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
                                                    event.epochs, history.train_accuracy),
                       key=f"{key}_accuracy_chart", width="stretch")


def refresh_seconds(view: RunView, service: RunService) -> float | None:
    """How often the live panel redraws this run: never once it has ended, else every
    REFRESH_SECONDS, stretched when more runs than slots are active on the server (then some
    wait in the queue). Each redraw builds every chart again: a busy server makes fewer of them
    and stays responsive (measured by the load test)."""
    return REFRESH_SECONDS * service.load() if view.active else None


def live_panel(run: Run, *, key: str,
               draw_snapshot: Callable[[Progress, str], None] | None = None) -> RunView:
    """Draw the run's status, curves and (via draw_snapshot(event, key)) its latest snapshot.

    While the run is active this is a fragment refreshed every `refresh_seconds`; when the
    run ends, the whole page reruns once so everything that depends on the result updates.
    Other widgets stay usable meanwhile. Each draw is the run's heartbeat (`Run.touch`).
    Returns the view drawn first.
    """
    first = run.view()

    @st.fragment(run_every=refresh_seconds(first, run_service()))
    def panel() -> None:
        run.touch()
        view = run.view()
        show_status(view)
        if view.latest is not None:
            show_curves(view.latest, key)
            if draw_snapshot is not None and view.latest.history.snapshots:
                draw_snapshot(view.latest, key)
        if first.active and not view.active:
            st.rerun()

    panel()
    return first


def refused(run: Run | None, problems: list[str]) -> bool:
    """Whether a new run may NOT start: `problems`, or the room's `run` still going. Each
    reason is shown with st.error."""
    if run is not None and run.view().active:
        problems = [*problems, "A run is already going: stop it first."]
    for problem in problems:
        st.error(problem)
    return bool(problems)
