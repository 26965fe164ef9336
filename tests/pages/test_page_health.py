"""The feed-forward room's "Layer health" tab in AppTest: presets train and explain themselves,
the initialisation control reaches the run, bad values get a message."""

import time
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import leave_no_run, messages, open_page, open_tab, room_run, run_until_done, said
from streamlit.testing.v1 import AppTest

from engine import ffnn
from engine.data.mnist import embedded_split
from engine.ffnn.model import population_statistics
from engine.models import checkpoint
from engine.training.loop import seed_key
from ui.training import run_service
from ui.views.health import CHART_NAMES, HEALTH_PRESETS

PAGE = "pages/feedforward.py"
HEALTH_CHARTS = ("ff_health_overview", "ff_health_activations", "ff_health_gradients",
                 "ff_health_updates")


@pytest.fixture
def at() -> Iterator[AppTest]:
    app = open_page(PAGE, tab="Layer health")
    yield app
    leave_no_run(app, "ff_room")


@pytest.fixture(scope="module")
def batch_norm_file() -> bytes:
    """A model file of a small batch-norm net, its statistics taken on training digits."""
    arch = ffnn.Architecture((16, 12), "sigmoid", "he", batch_norm=True)
    params = ffnn.init_params(seed_key(0), arch)
    x, _ = ffnn.twin_batch(embedded_split())
    return ffnn.checkpoint_bytes(arch, {**params, **population_statistics(params, x, arch=arch)})


def train_until_two_evaluations(at: AppTest) -> None:
    """Drive the run until it has recorded health twice (update ratios need two), then stop."""
    run = room_run(at, "ff_room")
    for _ in range(600):
        latest = run.view().latest
        if latest is not None and len(latest.history.snapshots) >= 2 or not run.view().active:
            break
        time.sleep(0.05)
    at.button(key="ff_stop").click().run()
    run_until_done(at, "ff_room", bound=50)


def test_the_tab_waits_for_a_run(at):
    assert "recorded while a net trains" in said(at)


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(HEALTH_PRESETS))
def test_each_preset_trains_and_shows_the_panel_and_its_diagnosis(at, preset):
    at.button(key=f"ff_preset_{preset.replace(' ', '_')}").click().run()
    config = HEALTH_PRESETS[preset]
    assert at.text_input(key="ff_hidden").value == ffnn.format_hidden(config.arch.hidden)
    assert at.selectbox(key="ff_init").value == config.arch.init
    assert at.checkbox(key="ff_batch_norm").value == config.arch.batch_norm
    assert room_run(at, "ff_room") is not None, said(at)
    assert room_run(at, "ff_room").settings["arch"]["batch_norm"] == config.arch.batch_norm
    train_until_two_evaluations(at)
    assert not at.exception, [e.value for e in at.exception]
    shown = {getattr(chart, "key", None) for chart in at.get("plotly_chart")}
    assert set(HEALTH_CHARTS) <= shown, shown
    overview = next(c for c in at.get("plotly_chart") if c.key == "ff_health_overview")
    assert ("layer 1 (BN)" in overview.proto.spec) == config.arch.batch_norm
    if preset == "vanishing gradients":
        assert "Vanishing gradients" in messages(at.warning)
        assert CHART_NAMES["gradients"] in messages(at.warning)
        assert "✗ vanishing gradients" in overview.proto.spec  # the tiles say it too
    if preset == "overfitting":
        assert "Overfitting" in messages(at.warning) and at.number_input(
            key="ff_train_digits").value == 200
        evidence = next(c for c in at.get("plotly_chart") if c.key == "ff_health_accuracy")
        assert "training digits" in evidence.proto.spec and "step " in evidence.proto.spec
    if preset == "dead ReLUs":
        assert "Dead units" in messages(at.warning) and "✗ dead units" in overview.proto.spec
    if preset in ("healthy", "batch norm rescues it"):  # the banner and every tile agree
        assert not at.warning, messages(at.warning)
        assert "No problem found in the whole run" in messages(at.success)
        assert "✗" not in overview.proto.spec


def test_the_initialisation_control_reaches_the_run(at):
    at.text_input(key="ff_hidden").set_value("8")
    at.selectbox(key="ff_init").set_value("zeros")
    at.number_input(key="ff_epochs").set_value(1)
    at.button(key="ff_start").click().run()
    run_until_done(at, "ff_room")
    model = at.session_state["ff_room"].model
    assert model.architecture.init == "zeros"
    # All-zero weights pass no gradient to any weight (only biases move): w1 stays zero.
    assert not np.asarray(model.params["w1"]).any()
    assert not at.exception


def test_depth_over_the_limit_is_refused_with_the_reason(at):
    at.text_input(key="ff_hidden").set_value(",".join(["8"] * 9))
    at.button(key="ff_start").click().run()
    assert "9 hidden layers is over this server's limit of 8" in messages(at.error)
    assert room_run(at, "ff_room") is None


@pytest.mark.parametrize(("field", "value"), [("init", "orthogonal"),
                                             ("batch_norm", "sometimes")])
def test_an_uploaded_model_with_an_unusable_field_gets_a_message(at, field, value):
    # An unknown initialiser, a batch_norm that is neither true nor false.
    arch = ffnn.Architecture((4,))
    params = ffnn.init_params(seed_key(0), arch)
    odd = SimpleNamespace(to_metadata=lambda: {**arch.to_metadata(), field: value})
    data = checkpoint.model_bytes(ffnn.MODEL_KIND, odd, params)
    open_tab(at, PAGE, "Model file")
    at.file_uploader(key="ff_model_file").set_value(("odd.npz", data, "application/zip")).run()
    assert not at.exception
    assert "architecture is unusable" in messages(at.error)
    assert repr(value) in messages(at.error)


def test_the_learning_rate_finder_suggests_a_rate_and_puts_it_in_the_control(at):
    at.button(key="ff_range_test_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    _, found = at.session_state["ff_range_test"]
    assert found.suggestion is not None and "falls fastest" in messages(at.info)
    assert "ff_range_test_chart" in {getattr(c, "key", None) for c in at.get("plotly_chart")}
    at.button(key="ff_range_test_use").click().run()
    assert at.number_input(key="ff_learning_rate").value == float(f"{found.suggestion:.2g}")
    assert "ff_range_test_chart" in {c.key for c in at.get("plotly_chart")}  # a rate changes
    # nothing a range test measured; another batch size, or Reset, does (issue 27)
    at.number_input(key="ff_batch_size").set_value(32).run()
    assert "ff_range_test_chart" not in {c.key for c in at.get("plotly_chart")}
    assert "was for other settings" in " ".join(c.value for c in at.caption)
    assert not [b for b in at.button if b.key == "ff_range_test_use"]
    at.number_input(key="ff_batch_size").set_value(64).run()  # back: its result is true again
    assert "ff_range_test_chart" in {c.key for c in at.get("plotly_chart")}


def test_the_finder_refuses_a_batch_over_the_limit(at):
    at.number_input(key="ff_batch_size").set_value(50_000)
    at.button(key="ff_range_test_button").click().run()
    assert "The finder cannot run" in messages(at.error)
    assert "ff_range_test" not in at.session_state


def test_a_run_brought_back_by_its_link_keeps_its_initialisation_and_says_it_has_no_health(
        at, runs_dir):
    at.text_input(key="ff_hidden").set_value("8")
    at.selectbox(key="ff_init").set_value("lecun")
    at.number_input(key="ff_epochs").set_value(1)
    at.button(key="ff_start").click().run()
    run = room_run(at, "ff_room")
    assert run.wait(60)
    run_service.clear()  # as after a server restart: only the saved file is left
    reloaded = open_page(PAGE, tab="Layer health", run=run.token)
    assert reloaded.selectbox(key="ff_init").value == "lecun"
    assert "kept no layer health" in said(reloaded)


@pytest.mark.slow
def test_a_batch_norm_model_works_in_every_view_of_the_room_or_says_why_not(at, batch_norm_file):
    open_tab(at, PAGE, "Model file")
    at.file_uploader(key="ff_model_file").set_value(("bn.npz", batch_norm_file,
                                                     "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "batch norm" in at.session_state["ff_room"].label
    open_tab(at, PAGE, "Twin-engine check")
    at.button(key="ff_twin_button").click().run()
    assert "Pass: the largest difference" in messages(at.success)
    for tab, view in (("Projector", "ff_projection"), ("What a unit wants", "ff_actmax")):
        open_tab(at, PAGE, tab)
        at.button(key=f"{view}_go").click().run()
        assert not at.exception, (view, [e.value for e in at.exception])
    open_tab(at, PAGE, "One step")
    at.button(key="ff_step_all").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "One step is written out for nets without batch norm" in messages(at.warning)


@pytest.mark.slow
def test_the_default_run_gets_no_warning():
    """Issue 26: the room's own defaults are a healthy run: no warning, every tile healthy."""
    at = open_page(PAGE, tab="Layer health")
    at.button(key="ff_start").click().run()
    try:
        run_until_done(at, "ff_room", bound=300)
    finally:
        leave_no_run(at, "ff_room")
    assert not at.warning, messages(at.warning)
    assert "No problem found in the whole run" in messages(at.success)
    overview = next(c for c in at.get("plotly_chart") if c.key == "ff_health_overview")
    assert "✗" not in overview.proto.spec and "✓ healthy" in overview.proto.spec
