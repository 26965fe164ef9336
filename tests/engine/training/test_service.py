"""The run service (engine.training.service), no Streamlit: the queue (first come, first served;
nobody starves), a training thread that raises (that run only), a visitor who leaves (the run stops
itself, by a fake clock: never by how fast this machine is), saving and restoring ended runs."""

import threading
from dataclasses import replace
from functools import cache

import pytest

from engine import ffnn
from engine.data.mnist import embedded_dataset
from engine.models.checkpoint import CheckpointError
from engine.training import runs
from engine.training.service import RunService, read_run_file, run_file

TINY = ffnn.TrainingConfig(ffnn.Architecture((8,)), epochs=1, batch_size=256, backend="autodiff")
BOUND = 60  # s: generous bound for a thread to end (never a speed claim, only "it ends")


@pytest.fixture
def service(tmp_path, clock) -> RunService:
    return RunService(slots=2, abandon_seconds=30, folder=tmp_path / "runs", clock=clock)


@cache
def tiny_final_event():
    """The last Progress of a real tiny autodiff run (a fraction of a second)."""
    *_, final = ffnn.training_run(TINY, embedded_dataset().split, dataset="embedded")
    return final


def event(step: int, status: str = "running"):
    """A Progress at `step` (a real run's, relabelled), without a model unless it ended."""
    final = tiny_final_event()
    return replace(final, step=step, status=status, message=f"ended at {step}",
                   model=final.model if status != "running" else None)


def tiny_training(stop: threading.Event):
    return ffnn.training_run(TINY, embedded_dataset().split, stop=stop, dataset="embedded")


def held(release: threading.Event):
    """A run's events: one, then nothing until released (or stopped), then it finishes."""

    def make(stop: threading.Event):
        yield event(1)
        while not (release.wait(0.01) or stop.is_set()):
            pass
        yield event(2, "finished")

    return make


def wait_until(condition, what: str) -> None:
    done = threading.Event()
    for _ in range(BOUND * 100):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError(f"never happened: {what}")


# --- the queue ----------------------------------------------------------------------------------


def test_queued_runs_start_in_order_and_all_finish(service):
    """Both slots held; five real runs queue behind, in order; one leaves the queue when
    stopped and the others move up; released, every remaining run runs, first come first
    served."""
    release = threading.Event()
    holders = [service.start(held(release), kind="ffnn") for _ in range(service.slots)]
    started: list[int] = []

    def noting(number: int):
        def make(stop):
            started.append(number)
            return tiny_training(stop)
        return make

    try:
        wait_until(lambda: all(r.view().status == "running" for r in holders), "slots taken")
        queued = [service.start(noting(i), kind="ffnn") for i in range(5)]
        wait_until(lambda: [r.view().queue_position for r in queued] == [1, 2, 3, 4, 5],
                   "five places in the queue")
        assert service.load() == 7 / 2  # the live panels redraw less often meanwhile
        queued[2].stop()
        assert queued[2].wait(BOUND)
        assert queued[2].view().status == "stopped"
        assert "waiting for its turn" in queued[2].view().message
        assert [r.view().queue_position for r in queued] == [1, 2, None, 3, 4]
    finally:
        release.set()
    assert all(r.wait(BOUND) for r in holders + queued)
    assert started == [0, 1, 3, 4]
    assert [r.view().status for r in queued] == ["finished"] * 2 + ["stopped"] + ["finished"] * 2
    assert all(r.view().model is not None for r in queued if r is not queued[2])
    assert service.counts() == (0, 0)  # every slot given back
    assert service.load() == 1.0


def test_many_runs_at_once_all_finish_never_more_than_the_slots_at_a_time(service):
    peak, running = [0], [0]
    lock = threading.Lock()

    def counted(stop: threading.Event):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            yield from tiny_training(stop)
        finally:
            with lock:
                running[0] -= 1

    many = [service.start(counted, kind="ffnn") for _ in range(6)]
    assert all(r.wait(BOUND) for r in many)
    assert [r.view().status for r in many] == ["finished"] * 6
    assert peak[0] == service.slots


def test_a_service_needs_a_slot(tmp_path):
    with pytest.raises(ValueError, match="at least one slot"):
        RunService(slots=0, abandon_seconds=30)


# --- a training thread that raises ------------------------------------------------------------


def failing(stop: threading.Event):
    yield event(1)
    raise FloatingPointError("the matrix caught fire")


def test_a_run_that_raises_fails_alone_and_frees_its_slot(service, caplog):
    bad = service.start(failing, kind="ffnn")
    good = service.start(tiny_training, kind="ffnn")
    assert bad.wait(BOUND) and good.wait(BOUND)
    view = bad.view()
    assert view.status == "failed" and not view.active and not view.usable
    assert "FloatingPointError: the matrix caught fire" in view.message
    assert "Nothing else is affected" in view.message
    assert good.view().status == "finished" and good.view().usable
    assert "training run" in caplog.text and "the matrix caught fire" in caplog.text  # logged
    after = [service.start(tiny_training, kind="ffnn") for _ in range(service.slots)]
    assert all(r.wait(BOUND) and r.view().status == "finished" for r in after)


# --- a visitor who leaves ---------------------------------------------------------------------


def test_a_run_nobody_watches_stops_itself_as_abandoned_and_is_saved_so(service, clock):
    """A real run, held after its first event while the clock moves past the abandon time: the
    watched run goes on, the unwatched one stops at its next event and is saved as abandoned."""
    gate = threading.Event()
    config = replace(TINY, epochs=3, batch_size=64)

    def held_training(stop):
        events = ffnn.training_run(config, embedded_dataset().split, stop=stop,
                                   dataset="embedded")
        yield next(events)
        gate.wait(BOUND)
        yield from events

    unwatched = service.start(held_training, kind="ffnn", settings=config.to_metadata())
    watched = service.start(held(gate), kind="ffnn")
    wait_until(lambda: unwatched.view().latest is not None and watched.view().latest is not None,
               "both runs have an event")
    clock.now += service.abandon_seconds + 1
    watched.touch()  # what the live panel does each time it draws
    gate.set()
    assert unwatched.wait(BOUND) and watched.wait(BOUND)
    view = unwatched.view()
    assert view.status == "abandoned" and view.usable
    assert "nobody had watched it for 30 s" in view.message
    assert "model so far is kept" in view.message
    assert watched.view().status == "finished"
    saved = read_run_file(runs.read_run(unwatched.token, service.folder))
    assert saved.status == "abandoned"
    assert saved.step < saved.total_steps


def test_a_queued_run_nobody_watches_leaves_the_queue(service, clock):
    release = threading.Event()
    holders = [service.start(held(release), kind="ffnn") for _ in range(service.slots)]
    try:
        wait_until(lambda: all(r.view().status == "running" for r in holders), "slots taken")
        waiting = service.start(tiny_training, kind="ffnn")
        wait_until(lambda: waiting.view().queue_position == 1, "queued")
        for holder in holders:
            holder.touch()
        clock.now += service.abandon_seconds + 1
        assert waiting.wait(BOUND)
        assert waiting.view().status == "abandoned"
        assert "nobody was watching" in waiting.view().message
        assert service.queue_position(waiting) is None
    finally:
        release.set()
    assert all(r.wait(BOUND) for r in holders)


# --- saved runs ----------------------------------------------------------------------------------


def test_an_ended_run_is_saved_and_restored_with_its_model_settings_and_history(service):
    run = service.start(tiny_training, kind="ffnn", settings=TINY.to_metadata())
    assert run.wait(BOUND)
    ended = run.view()
    other = RunService(slots=1, abandon_seconds=30, folder=service.folder)  # a restarted server
    restored = other.restore(run.token, "ffnn")
    view = restored.view()
    assert view.status == ended.status == "finished"
    assert view.latest.history.losses == pytest.approx(ended.latest.history.losses)
    assert view.latest.history.eval_steps == ended.latest.history.eval_steps
    assert restored.settings == TINY.to_metadata()
    for name, value in ended.model.params.items():
        assert (view.model.params[name] == value).all()
    assert service.restore(run.token, "ffnn") is run  # still in memory: the same run
    with pytest.raises(runs.RunNotFoundError, match="another room"):
        other.restore(run.token, "cnn")


def test_a_damaged_run_file_is_a_clear_error():
    data = run_file(tiny_final_event())
    with pytest.raises(CheckpointError):
        read_run_file(data[: len(data) // 2])
    assert read_run_file(data).model.kind == "ffnn"


def test_a_run_that_ends_without_a_model_is_not_saved(service):
    run = service.start(lambda stop: iter([event(1), replace(event(1, "diverged"), model=None)]),
                        kind="ffnn")
    assert run.wait(BOUND)
    assert run.view().status == "diverged" and not run.view().usable
    with pytest.raises(runs.RunNotFoundError):
        runs.read_run(run.token, service.folder)
