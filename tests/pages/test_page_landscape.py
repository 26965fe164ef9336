"""The rooms' Landscape tab in AppTest: computed in the background after a short run, every view
drawn, the history scrubber's step marked on the path, a job cancelled, limits refused."""

import base64
import json

import numpy as np
import pytest
from helpers import assert_calm, open_page, open_tab, room_run, run_until_done
from streamlit.testing.v1 import AppTest

JOB_BOUND = 300  # s: a liveness bound for a small landscape job, not a speed claim


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def chart_titles(at: AppTest) -> str:
    return " ".join(f.get("layout", {}).get("title", {}).get("text", "") for f in figures(at))


def coordinates(trace: dict) -> np.ndarray:
    """A trace's points (m, 2), its x and y as plotly sends them (lists or typed arrays)."""
    def values(axis):
        data = trace[axis]
        if isinstance(data, dict):
            return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        return np.asarray(data, float)
    return np.column_stack([values("x"), values("y")])


def landscape_job(at: AppTest, prefix: str):
    """The room's latest landscape job (a run of the run service)."""
    return at.session_state[f"{prefix}landscape_job"][1]


def compute_after_a_short_run(at: AppTest, prefix: str, start: str) -> None:
    at.button(key=start).click().run()
    run_until_done(at, f"{prefix}room")
    at.slider(key=f"{prefix}landscape_grid").set_value(5)
    at.number_input(key=f"{prefix}landscape_digits").set_value(200)
    at.button(key=f"{prefix}landscape_go").click().run()
    assert_calm(at)
    assert landscape_job(at, prefix).wait(JOB_BOUND)
    at.run()  # the job has ended: its landscape is kept and drawn
    assert_calm(at)
    titles = chart_titles(at)
    assert "straight line from the initial to the final" in titles
    assert "random slice" in titles and "3-D" in titles
    assert "training path" in titles and "% of its variance" in titles
    assert landscape_job(at, prefix).view().status == "finished"


def marked_point(at: AppTest, source: str) -> tuple[np.ndarray, str, np.ndarray]:
    """The ringed point (2,) on the training path's figure, its legend name, and the path's
    points (T, 2)."""
    path = next(f for f in figures(at) if "training path" in f["layout"]["title"]["text"])
    marker = next(t for t in path["data"] if f"({source})" in t.get("name", ""))
    on_path = next(t for t in path["data"] if t.get("name") == "training path")
    return coordinates(marker)[0], marker["name"], coordinates(on_path)


@pytest.mark.slow
def test_the_feedforward_landscape_renders_and_marks_the_slid_step_on_the_path():
    # The feed-forward room has no history scrubber: a slider under the path picks the step.
    at = open_page("pages/feedforward.py", tab="Landscape")
    at.text_input(key="ff_hidden").set_value("16")
    at.number_input(key="ff_epochs").set_value(2)
    compute_after_a_short_run(at, "ff_", "ff_start")
    steps = room_run(at, "ff_room").view().latest.history.snapshot_steps
    point, name, path = marked_point(at, "slider")
    assert name == f"step {steps[-1]} (slider)"
    np.testing.assert_array_equal(point, path[-1])
    at.select_slider(key="ff_landscape_mark").set_value(steps[1]).run()
    assert_calm(at)
    point, name, path = marked_point(at, "slider")
    assert name == f"step {steps[1]} (slider)"
    np.testing.assert_array_equal(point, path[1])


@pytest.mark.slow
def test_the_cnn_landscape_renders_and_marks_the_scrubbed_step_on_the_path():
    at = open_page("pages/cnn.py", tab="Landscape")
    at.text_input(key="cnn_filters").set_value("4")
    at.number_input(key="cnn_epochs").set_value(1)
    compute_after_a_short_run(at, "cnn_", "cnn_start")
    view = room_run(at, "cnn_room").view()
    steps = view.latest.history.snapshot_steps
    open_tab(at, "pages/cnn.py", "Training history")
    at.select_slider(key=f"cnn_history_{view.id}").set_value(1).run()
    open_tab(at, "pages/cnn.py", "Landscape")  # the scrubber's step is kept, and marked here
    point, name, path = marked_point(at, "history tab")
    assert name == f"step {steps[1]} (history tab)"
    np.testing.assert_array_equal(point, path[1])


@pytest.mark.slow
def test_a_landscape_job_shows_its_progress_and_cancel_stops_it():
    at = open_page("pages/cnn.py", tab="Landscape")
    # The default CNN on 600 digits, 41x41: minutes of work, so it is still going when the
    # next script run draws its progress and the Cancel button is pressed.
    at.slider(key="cnn_landscape_grid").set_value(41)
    at.number_input(key="cnn_landscape_digits").set_value(600)
    at.button(key="cnn_landscape_go").click().run()
    job = landscape_job(at, "cnn_")
    at.run()
    assert at.get("progress")
    assert not any("Press **Compute**" in i.value for i in at.info)  # the bar says it all
    assert at.button(key="cnn_landscape_go").disabled  # one job at a time
    at.button(key="cnn_landscape_cancel").click().run()
    assert job.wait(JOB_BOUND)
    at.run()
    assert_calm(at)
    assert job.view().status == "stopped"
    assert any("Cancelled: Stopped after" in i.value for i in at.info)
    assert "random slice" not in chart_titles(at)


def test_an_over_limit_grid_gets_a_message_and_no_button():
    at = open_page("pages/feedforward.py", tab="Landscape")
    at.slider(key="ff_landscape_grid").set_value(61).run()
    assert any("too large" in w.value and "61×61" in w.value for w in at.warning)
    assert at.button(key="ff_landscape_go").disabled
    at.slider(key="ff_landscape_grid").set_value(21)
    at.number_input(key="ff_landscape_digits").set_value(5000).run()
    assert any("5,000 digits is over" in w.value for w in at.warning)
    assert at.button(key="ff_landscape_go").disabled
