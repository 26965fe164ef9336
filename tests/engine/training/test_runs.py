"""The run store (engine.training.runs): ids, saved runs read back and validated, caps, crash-safe
saves;
and a feed-forward run that comes back after a reload (AppTest), from disk and from memory."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, open_page, open_tab
from streamlit.testing.v1 import AppTest

from engine import cnn, ffnn
from engine.app.settings import Limits
from engine.data.mnist import embedded_dataset
from engine.models import checkpoint
from engine.training import runs
from engine.training.service import RunService
from ui.training import run_service

TINY = ffnn.TrainingConfig(ffnn.Architecture((8,)), epochs=1, batch_size=256, backend="autodiff")


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch) -> Path:
    """Every test saves its runs in its own folder."""
    folder = tmp_path / "runs"
    monkeypatch.setenv(runs.RUNS_DIR_ENV, str(folder))
    return folder


@cache
def tiny_final_event():
    """The last Progress of a real (tiny, ~0.2 s) autodiff training run."""
    *_, final = ffnn.training_run(TINY, embedded_dataset().split)
    return final


def tiny_run_file(event=None, **overrides) -> bytes:
    """A saved run's bytes, as ui.training writes them, with record fields overridden."""
    event = event or tiny_final_event()
    record = {**runs.run_metadata(event), **overrides}
    return ffnn.checkpoint_bytes(TINY.arch, event.params, training=TINY.to_metadata(),
                                 dataset="embedded", run=record)


# --- ids --------------------------------------------------------------------------------------


def test_run_ids_are_fresh_well_formed_and_checked_strictly():
    ids = {runs.new_run_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(runs.check_run_id(i) == i for i in ids)
    for bad in ["", "../../etc/passwd", "a" * 21, "a" * 23, "a" * 21 + "/", "a" * 21 + ".",
                "a" * 21 + "\n", "ä" * 22, None, 42, ["a" * 22]]:
        with pytest.raises(runs.RunIdError, match="malformed"):
            runs.check_run_id(bad)


def test_a_run_path_stays_in_its_folder(runs_dir):
    run_id = runs.new_run_id()
    assert runs.run_path(run_id) == runs_dir / f"{run_id}.npz"
    with pytest.raises(runs.RunIdError):
        runs.run_path("../" * 6 + "etc/passwd")


# --- saved runs ---------------------------------------------------------------------------------


def test_a_saved_run_reads_back_as_its_model_and_its_last_event():
    event = tiny_final_event()
    run_id = runs.new_run_id()
    runs.save_run(run_id, tiny_run_file())
    arch, params, metadata = ffnn.read_checkpoint(runs.read_run(run_id))
    restored = runs.progress_from_metadata(metadata["run"])
    assert arch == TINY.arch and metadata["training"] == json.loads(json.dumps(
        TINY.to_metadata()))
    assert set(params) == set(event.params)
    for name in params:
        np.testing.assert_array_equal(params[name], event.params[name])
    for field in ("status", "message", "step", "total_steps", "epochs", "val_accuracy",
                  "test_accuracy"):
        assert getattr(restored, field) == getattr(event, field), field
    # The feed-forward net's snapshots (first-layer weights, MBs) are not saved; the rest is.
    assert restored.history == replace(event.history, snapshot_steps=(), snapshots=())
    assert restored.done and restored.loss == pytest.approx(event.loss)


def test_a_cnn_run_saves_its_snapshots_and_reads_them_back():
    config = cnn.TrainingConfig(cnn.CNNSpec((2,)), batch_size=512, epochs=1)
    follow = embedded_dataset().split.x_test[0] / 255.0
    *_, event = cnn.training_run(config, embedded_dataset().split, follow=follow)
    record = json.loads(json.dumps(runs.run_metadata(event)))  # as stored: JSON
    restored = runs.progress_from_metadata(record, cnn.Snapshot.from_record)
    assert restored.history.snapshot_steps == event.history.snapshot_steps
    for ours, theirs in zip(restored.history.snapshots, event.history.snapshots, strict=True):
        np.testing.assert_allclose(ours.filters, theirs.filters, atol=1e-6)
        np.testing.assert_allclose(ours.probabilities, theirs.probabilities, atol=1e-6)
    record["history"]["snapshots"][0]["filters"] = [[1.0, 2.0]]  # not (F, k, k)
    with pytest.raises(runs.RunFileError, match="damaged"):
        runs.progress_from_metadata(record, cnn.Snapshot.from_record)


def test_an_unknown_run_is_not_found(runs_dir):
    with pytest.raises(runs.RunNotFoundError, match="No saved run has this id"):
        runs.read_run(runs.new_run_id())


@pytest.mark.parametrize("damage", [
    {"status": "running"}, {"status": None}, {"total_steps": -1}, {"step": 10**9},
    {"history": {"losses": [], "eval_steps": [1], "val_accuracy": [], "test_accuracy": []}},
    {"history": "no"}, {"val_accuracy": 1.5}, {"loss": "NaN"}, {"message": ["x"]},
    {"epochs": True}, {"elapsed": float("inf")},
])
def test_a_damaged_run_record_is_refused_with_a_sentence(damage):
    record = {**runs.run_metadata(tiny_final_event()), **damage}
    with pytest.raises(runs.RunFileError, match="damaged"):
        runs.progress_from_metadata(record)


def test_a_missing_run_record_is_refused():
    with pytest.raises(runs.RunFileError, match="damaged"):
        runs.progress_from_metadata(None)


def test_a_run_that_lost_its_loss_still_saves_and_reads_back():
    """A run stopped before its first step has a NaN loss; JSON has no NaN, so it goes as null."""
    event = tiny_final_event()
    stopped = runs.run_metadata(replace(event, loss=float("nan")))
    assert stopped["loss"] is None
    assert np.isnan(runs.progress_from_metadata(stopped).loss)


# --- caps ----------------------------------------------------------------------------------


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_caps_delete_the_too_old_then_the_oldest_and_only_run_files(runs_dir):
    runs_dir.mkdir()
    files = [runs_dir / f"{runs.new_run_id()}.npz" for _ in range(5)]
    for i, path in enumerate(files):
        path.write_bytes(b"x" * 1000)
        age(path, 100 - i)  # files[0] is the oldest
    age(files[1], 10 * 86400)  # over the age cap
    stranger = runs_dir / "notes.npz"  # not a run's name: never touched
    stranger.write_bytes(b"mine")
    age(stranger, 10 * 86400)
    crashed = runs_dir / f".{runs.new_run_id()}.npz.abc123.tmp"
    crashed.write_bytes(b"half")
    age(crashed, 2 * runs.STALE_TEMP_SECONDS)
    fresh_temp = runs_dir / f".{runs.new_run_id()}.npz.def456.tmp"  # a save in progress
    fresh_temp.write_bytes(b"half")

    deleted = runs.prune_runs(runs_dir, max_bytes=2500, max_age_seconds=86400, keep=files[4])
    assert set(deleted) == {files[1], files[0], files[2], crashed}
    assert sorted(runs_dir.iterdir()) == sorted([files[3], files[4], stranger, fresh_temp])


def test_saving_applies_the_caps_but_keeps_the_new_run(runs_dir):
    old = runs.new_run_id()
    runs.save_run(old, b"PK" + b"x" * 2**20)
    new = runs.new_run_id()
    runs.save_run(new, b"PK" + b"y" * 2**20, caps=Limits(max_saved_runs_mb=1))
    assert [p.name for p in runs_dir.iterdir()] == [f"{new}.npz"]


# --- a crash mid-save leaves the previous file whole ----------------------------------------

CRASHING_SAVE = """
import os, signal, sys
from engine.models import checkpoint
def crash(*args, **kwargs):  # a power cut at this point: no cleanup, no finally
    os.kill(os.getpid(), signal.SIGKILL)
setattr(os, sys.argv[2], crash)
checkpoint.write_atomically(sys.argv[1], b"new bytes" * 100_000)
"""


@pytest.mark.parametrize("crash_at", ["fsync", "replace"])
def test_a_crash_mid_save_leaves_the_previous_run_file_intact(runs_dir, crash_at):
    """The saving process is killed (SIGKILL) after writing the temp file, before (fsync) or at
    (replace) the rename: the previous file is still there, whole and valid."""
    run_id = runs.new_run_id()
    previous = tiny_run_file()
    path = runs.save_run(run_id, previous)
    result = subprocess.run([sys.executable, "-c", CRASHING_SAVE, str(path), crash_at],
                            cwd=ROOT, timeout=60, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    assert path.read_bytes() == previous
    ffnn.read_checkpoint(runs.read_run(run_id))  # still a valid model file
    (temp,) = [p for p in runs_dir.iterdir() if p.suffix == ".tmp"]  # the crashed save's
    assert temp.stat().st_size > 0
    age(temp, 2 * runs.STALE_TEMP_SECONDS)
    runs.prune_runs(runs_dir, 2**30, 86400)
    assert list(runs_dir.iterdir()) == [path]


def test_a_failing_write_removes_its_temp_file_and_keeps_the_previous(runs_dir):
    run_id = runs.new_run_id()
    path = runs.save_run(run_id, b"PK previous")
    with pytest.raises(TypeError):
        checkpoint.write_atomically(path, "not bytes")  # raises inside the write
    assert path.read_bytes() == b"PK previous"
    assert list(runs_dir.iterdir()) == [path]


# --- the run service saves a run when it ends ---------------------------------------------------


def test_a_run_is_saved_when_it_ends_under_its_token(runs_dir):
    service = RunService(slots=1, abandon_seconds=30)
    run = service.start(lambda stop: ffnn.training_run(TINY, embedded_dataset().split, stop=stop,
                                                       dataset="embedded"), kind="ffnn")
    assert run.wait(60) and run.view().status == "finished"
    _, params, metadata = ffnn.read_checkpoint(runs.read_run(run.token))
    assert metadata["run"]["status"] == "finished"
    assert metadata["metrics"]["test_accuracy"] == run.view().latest.test_accuracy
    assert runs.progress_from_metadata(metadata["run"]).history.losses == (
        run.view().latest.history.losses)


def test_a_save_that_fails_loses_only_the_save(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the runs folder should be")
    service = RunService(slots=1, abandon_seconds=30, folder=blocked)
    run = service.start(lambda stop: ffnn.training_run(TINY, embedded_dataset().split, stop=stop,
                                                       dataset="embedded"), kind="ffnn")
    assert run.wait(60)
    assert run.view().status == "finished"  # the run itself is fine and on screen
    assert blocked.read_text().startswith("a file")


# --- a reload brings the run back (AppTest) ---------------------------------------------------


def feedforward(run_id: str | None = None, page: str = "pages/feedforward.py") -> AppTest:
    """A fresh session (as after a reload) on a room's page, URL ?run=run_id."""
    return open_page(page, **({} if run_id is None else {"run": run_id}))


def room(at: AppTest, key: str = "ff_room"):
    """The room's state, None before the session has one."""
    try:
        return at.session_state[key]
    except KeyError:
        return None


def test_a_finished_run_comes_back_after_a_reload_with_its_controls_curves_and_model():
    at = feedforward()
    at.text_input(key="ff_hidden").set_value("8")
    at.number_input(key="ff_epochs").set_value(1)
    at.number_input(key="ff_batch_size").set_value(128)
    at.selectbox(key="ff_optimizer").set_value("momentum")
    at.radio(key="ff_backend").set_value("autodiff")
    at.button(key="ff_start").click().run()
    run = room(at).run
    assert at.query_params["run"] == run.token
    assert run.wait(60)
    at.run()
    finished = run.view()
    accuracy = at.metric[0].value

    run_service.clear()  # as after a server restart: only the saved file is left
    reloaded = feedforward(run.token)
    restored = room(reloaded).run
    assert restored.token == run.token and restored is not run
    assert restored.view().latest.history.losses == finished.latest.history.losses
    assert "Finished 1 epoch" in " ".join(s.value for s in reloaded.success)
    assert len(reloaded.get("plotly_chart")) >= 2  # the loss and accuracy curves
    assert "784-8-10" in " ".join(m.value for m in reloaded.markdown)
    assert "brought back by its link" in " ".join(m.value for m in reloaded.markdown)
    assert reloaded.metric[0].value == accuracy  # the same model, evaluated again
    assert reloaded.session_state["trained_models"]["ffnn-autodiff"].architecture == TINY.arch
    assert reloaded.query_params["run"] == run.token
    # Issue 18, item 5: the run's controls, not the defaults.
    assert reloaded.text_input(key="ff_hidden").value == "8"
    assert reloaded.number_input(key="ff_batch_size").value == 128
    assert reloaded.selectbox(key="ff_optimizer").value == "momentum"
    assert reloaded.radio(key="ff_backend").value == "autodiff"


def test_a_session_lost_mid_run_finds_the_running_run_again_with_its_controls():
    at = feedforward()
    at.text_input(key="ff_hidden").set_value("8")
    at.number_input(key="ff_epochs").set_value(50)
    at.radio(key="ff_backend").set_value("autodiff")
    at.button(key="ff_start").click().run()
    run = room(at).run
    try:
        reloaded = feedforward(run.token)
        assert room(reloaded).run is run  # the very run, still going
        assert reloaded.text_input(key="ff_hidden").value == "8"
        assert reloaded.number_input(key="ff_epochs").value == 50
        reloaded.button(key="ff_stop").click().run()
        assert run.wait(30)
        reloaded.run()
        assert run.view().status == "stopped"
        assert "784-8-10" in " ".join(m.value for m in reloaded.markdown)  # adopted as it ended
    finally:
        run.stop()
        run.wait(30)


@pytest.mark.parametrize(("run_id", "reason"), [
    ("../../etc/passwd", "malformed"),
    ("not-a-run", "malformed"),
    (None, "No saved run has this id"),  # well-formed, never saved
])
def test_a_bad_link_says_so_and_leaves_the_url(run_id, reason):
    at = feedforward(run_id or runs.new_run_id())
    (warning,) = at.warning
    assert "Cannot bring back the training run of this link" in warning.value
    assert reason in warning.value
    assert room(at) is None
    assert "run" not in at.query_params
    at.run()
    assert not at.warning  # said once


def test_a_damaged_or_foreign_run_file_is_refused(runs_dir):
    damaged, foreign = runs.new_run_id(), runs.new_run_id()
    runs.save_run(damaged, tiny_run_file(history={"losses": "lots"}))
    spec = cnn.CNNSpec((2,))  # a CNN's run file under the feed-forward room's link
    runs.save_run(foreign, cnn.checkpoint_bytes(spec, {k: np.zeros(s, np.float32) for k, s in
                                                       spec.param_shapes().items()}))
    for run_id, reason in [(damaged, "damaged"), (foreign, "'cnn' model")]:
        at = feedforward(run_id)
        assert reason in " ".join(w.value for w in at.warning)
        assert room(at) is None


@pytest.mark.slow
def test_a_cnn_run_comes_back_in_the_cnn_room_with_its_controls_and_history():
    """Issue 11: a restored CNN run shows its controls and its history scrubber."""
    at = feedforward(page="pages/cnn.py")
    at.text_input(key="cnn_filters").set_value("2")
    at.number_input(key="cnn_batch_size").set_value(256)
    at.number_input(key="cnn_epochs").set_value(2)
    at.slider(key="cnn_shift").set_value(1)
    at.button(key="cnn_start").click().run()
    run = room(at, "cnn_room").run
    assert run.wait(120)
    run_service.clear()  # a server restart: only the saved file is left

    reloaded = feedforward(run.token, page="pages/cnn.py")
    assert room(reloaded, "cnn_room").run.token == run.token
    assert "conv 3x3x2" in " ".join(m.value for m in reloaded.markdown)
    assert "brought back by its link" in " ".join(m.value for m in reloaded.markdown)
    assert reloaded.session_state["trained_models"]["cnn"].architecture.filters == (2,)
    assert reloaded.text_input(key="cnn_filters").value == "2"
    assert reloaded.number_input(key="cnn_batch_size").value == 256
    assert reloaded.slider(key="cnn_shift").value == 1
    open_tab(reloaded, "pages/cnn.py", "Training history")
    (slider,) = reloaded.select_slider  # the history scrubber
    assert len(slider.options) == len(run.view().latest.history.snapshots)
