"""The rooms' Landscape tab in AppTest: after a short run, every view is drawn; limits refused."""

import json

import pytest
from helpers import open_page, room_run, run_until_done
from streamlit.testing.v1 import AppTest


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec).get("layout", {}).get("title", {}).get("text", "")
            for c in at.get("plotly_chart")]


def compute_after_a_short_run(at: AppTest, prefix: str, start: str) -> None:
    at.button(key=start).click().run()
    run_until_done(at, f"{prefix}room")
    at.slider(key=f"{prefix}landscape_grid").set_value(5)
    at.number_input(key=f"{prefix}landscape_digits").set_value(200)
    at.button(key=f"{prefix}landscape_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    titles = " ".join(chart_titles(at))
    assert "straight line from the initial to the final" in titles
    assert "random slice" in titles and "3-D" in titles
    assert "training path" in titles and "% of its variance" in titles
    run = room_run(at, f"{prefix}room")
    run.stop()
    assert run.wait(30)


@pytest.mark.slow
def test_the_feedforward_landscape_renders_after_a_short_run():
    at = open_page("pages/feedforward.py")
    at.text_input(key="ff_hidden").set_value("16")
    at.number_input(key="ff_epochs").set_value(2)
    compute_after_a_short_run(at, "ff_", "ff_start")


@pytest.mark.slow
def test_the_cnn_landscape_renders_after_a_short_run():
    at = open_page("pages/cnn.py")
    at.text_input(key="cnn_filters").set_value("4")
    at.number_input(key="cnn_epochs").set_value(1)
    compute_after_a_short_run(at, "cnn_", "cnn_start")


def test_an_over_limit_grid_gets_a_message_and_no_button():
    at = open_page("pages/feedforward.py")
    at.slider(key="ff_landscape_grid").set_value(61).run()
    assert any("too large" in w.value and "61×61" in w.value for w in at.warning)
    assert at.button(key="ff_landscape_go").disabled
