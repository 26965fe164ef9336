"""The CNN room in AppTest: the default model inside out, a short training run with live filters
and its history, and clear errors for networks that cannot be built."""

import json
from collections.abc import Iterator

import pytest
from helpers import (
    canvas_state,
    leave_no_run,
    messages,
    open_page,
    open_tab,
    room_run,
    said,
    vertical_one,
)
from helpers import run_until_done as until_done
from streamlit.testing.v1 import AppTest

from engine import cnn
from ui.training import run_service

PAGE = "pages/cnn.py"


@pytest.fixture
def at() -> Iterator[AppTest]:
    app = open_page(PAGE)
    yield app
    leave_no_run(app, "cnn_room")


def run_of(at: AppTest):
    return room_run(at, "cnn_room")


def chart_titles(at: AppTest) -> str:
    return " ".join(json.loads(c.proto.spec).get("layout", {}).get("title", {}).get("text", "")
                    for c in at.get("plotly_chart"))


def run_until_done(at: AppTest, bound: int = 300) -> None:
    until_done(at, "cnn_room", bound)


def test_the_page_starts_from_the_engine_defaults(at):
    """T2 is measured on TrainingConfig(): the untouched controls start exactly that run."""
    at.button(key="cnn_start").click().run()
    run = run_of(at)
    run.stop()
    assert run.wait(60)
    assert run.settings == cnn.TrainingConfig().to_metadata()
    assert not at.checkbox(key="cnn_use_dropout").value


def test_the_default_model_is_shown_inside_out(at):
    assert "pretrained default CNN" in messages(at.markdown)
    assert "It reads a 4 (" in chart_titles(at)  # the followed digit, #492: a 4 like a 9
    captions = " ".join(c for image in at.get("image") for c in image.captions)
    assert "Saliency for 4" in captions
    assert "Block 1: 16 feature maps of 28×28" in captions
    assert "Block 2: 32 feature maps of 14×14" in captions
    open_tab(at, PAGE, "Evaluation")
    assert "Confusion matrix" in chart_titles(at)
    accuracy = float(at.metric[0].value.rstrip("%"))
    assert accuracy >= 97.5


def test_a_drawn_digit_can_be_followed(at):
    at.radio(key="cnn_follow").set_value("sketch").run()
    at.session_state["cnn_canvas_0"] = canvas_state(vertical_one())
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "It reads a 1 (" in chart_titles(at)


@pytest.mark.parametrize(
    ("filters", "kernel", "message"),
    [
        ("8, 8, 8, 8, 8", 3, "block 5: a 3x3 kernel is larger than its 1x1 input"),
        ("8, zero", 3, "whole numbers separated by commas"),
        ("0", 3, "at least one filter"),
        ("8, 8, 8, 8", 7, "block 4: a 7x7 kernel is larger than its 3x3 input"),
    ],
)
def test_a_network_that_cannot_be_built_is_refused_with_the_reason(at, filters, kernel, message):
    at.text_input(key="cnn_filters").set_value(filters)
    at.selectbox(key="cnn_kernel").set_value(kernel)
    at.button(key="cnn_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "This network cannot be built" in messages(at.error)
    assert message in messages(at.error)
    assert run_of(at) is None


def train_tiny(at: AppTest, epochs: int) -> None:
    """Train one block of 4 filters for `epochs` epochs of 14 steps of 256 digits, to the end."""
    at.text_input(key="cnn_filters").set_value("4")
    at.number_input(key="cnn_batch_size").set_value(256)
    at.number_input(key="cnn_epochs").set_value(epochs)
    at.button(key="cnn_start").click().run()
    run_until_done(at)
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.slow
def test_a_short_run_shows_live_filters_then_its_history(at):
    train_tiny(at, epochs=2)
    assert "First-layer filters, live" in chart_titles(at)  # the live panel keeps the last view
    assert "Finished 2 epochs" in messages(at.success)
    assert "your CNN (conv 3x3x4 - ReLU - maxpool 2 - dense 10, finished)" in messages(at.markdown)
    assert at.session_state["trained_models"]["cnn"].architecture.filters == (4,)
    open_tab(at, PAGE, "Training history")
    # The history: one snapshot per evaluation, scrubbable; its filters are 4 little 3x3 maps.
    (slider,) = at.select_slider
    assert slider.options == ["7 (epoch 0.5)", "14 (epoch 1.0)", "21 (epoch 1.5)",
                              "28 (epoch 2.0)"]  # measured twice per epoch, as the page says
    assert "First-layer filters at step 28" in chart_titles(at)
    slider.set_value(0).run()
    assert "First-layer filters at step 7" in chart_titles(at)
    assert "Its answer for test digit #492 (a 4) at step 7" in chart_titles(at)


HEALTH_CHARTS = ("cnn_health_overview", "cnn_health_activations", "cnn_health_gradients",
                 "cnn_health_updates")


@pytest.mark.slow
def test_the_layer_health_tab_shows_a_short_runs_health_and_its_diagnosis(at):
    """Issue 12 in the CNN room: one epoch, measured twice (update ratios need two)."""
    open_tab(at, PAGE, "Layer health")
    assert "recorded while a net trains: press **Train**" in said(at)
    assert not set(HEALTH_CHARTS) & {c.key for c in at.get("plotly_chart")}
    train_tiny(at, epochs=1)
    charts = {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    assert set(HEALTH_CHARTS) <= set(charts), set(charts)
    tiles = charts["cnn_health_overview"]["data"][0]["text"][0]
    assert [tile.split("<br>")[0] for tile in tiles] == ["<b>conv1</b>", "<b>dense (output)</b>"]
    (heatmap,) = charts["cnn_health_activations"]["data"]  # one block: one heatmap
    assert heatmap["type"] == "heatmap"
    assert [line["name"] for line in charts["cnn_health_updates"]["data"]] == [
        "conv1", "dense (output)"]
    diagnosis = messages(at.warning) + messages(at.success)
    assert "See " in diagnosis or "No problem found in the whole run" in diagnosis
    assert "filter plays the part of a unit" in messages(at.markdown)


def test_a_run_brought_back_by_its_link_says_it_kept_no_health(at, runs_dir):
    train_tiny(at, epochs=1)
    run_service.clear()  # as after a server restart: only the saved file is left
    reloaded = open_page(PAGE, tab="Layer health", run=run_of(at).token)
    assert not reloaded.exception, [e.value for e in reloaded.exception]
    assert "kept no layer health" in said(reloaded)


def test_the_cnn_room_offers_its_model_file_for_download_and_upload(at):
    """Issue 18, item 18: the CNN room had no model download or upload."""
    open_tab(at, PAGE, "Model file")
    (download,) = [d for d in at.get("download_button") if "Download this model" in d.proto.label]
    assert download.proto.label == "Download this model (.npz)"
    assert any("Upload a model file" in u.proto.label for u in at.get("file_uploader"))


def test_look_inside_shows_where_the_cnn_looks_when_asked(at):
    at.toggle(key="cnn_attribution_on").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    (chart,) = [c.proto.spec for c in at.get("plotly_chart") if c.key == "cnn_attribution"]
    assert "Occlusion" in chart
    at.selectbox(key="cnn_explain_class").set_value(9).run()
    (check,) = [d.value for d in at.dataframe if "explained digit" in d.value.columns]
    assert list(check["explained digit"]) == [9]


@pytest.mark.slow
def test_the_default_run_gets_no_warning(at):
    """Issue 26: the room's own defaults (a cosine decay to 0 included) are a healthy run."""
    at.button(key="cnn_start").click().run()
    run_until_done(at)
    open_tab(at, PAGE, "Layer health")
    assert not at.warning, messages(at.warning)
    assert "No problem found in the whole run" in messages(at.success)
