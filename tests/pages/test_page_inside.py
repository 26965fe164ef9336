"""AppTest of the views inside the rooms: one step phase by phase, the projector, what a unit
wants; bad selections get messages. Each view runs in a tiny host page (the room's model and
test digits), and once inside its room's page."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from helpers import (
    APP_TIMEOUT,
    assert_calm,
    canvas_state,
    leave_no_run,
    mnist_digit,
    mnist_on_canvas,
    open_page,
    open_tab,
    run_until_done,
    said,
)
from streamlit.testing.v1 import AppTest


def one_step_app():
    """Host: the default feed-forward model, the embedded test digits, the "One step" view."""
    from engine.app.predict import load_default_model
    from engine.data.mnist import embedded_split
    from ui.views.step import show_one_step

    split = embedded_split()
    show_one_step(load_default_model("ffnn-jax"), split.x_test, split.y_test,
                  loss_name="cross_entropy", optimizer="sgd", learning_rate=0.1)

FF = "pages/feedforward.py"


def projector_app():
    """Host: the default CNN and the embedded test digits in the "Projector" view."""
    from engine.app.predict import load_default_model
    from engine.data.mnist import embedded_split
    from ui.views.projector import show_projector

    split = embedded_split()
    show_projector(load_default_model("cnn"), split.x_test, split.y_test, key="cnn",
                   drawing=split.x_test[5] / 255.0, drawing_label="my drawing")


def dead_layer_projector_app():
    """Host: a feed-forward net whose hidden layer (wider than the 1,000 digits, so PCA goes by
    the digits' Gram matrix) is silent for every digit: no variance at all."""
    import numpy as np

    from engine import ffnn
    from engine.data.mnist import embedded_split
    from engine.models.model import Model
    from ui.views.projector import show_projector

    arch = ffnn.Architecture((1001,))
    params = {"w0": np.zeros((784, 1001), np.float32), "b0": -np.ones(1001, np.float32),
              "w1": np.ones((1001, 10), np.float32), "b1": np.zeros(10, np.float32)}
    split = embedded_split()
    show_projector(Model(ffnn.FAMILY, arch, params, {}), split.x_test, split.y_test, key="ff",
                   drawing=split.x_test[5] / 255.0, drawing_label="my drawing")


def unit_wants_app():
    """Host: the default CNN in the "What a unit wants" view."""
    from engine.app.predict import load_default_model
    from ui.views.inside import show_unit_wants

    show_unit_wants(load_default_model("cnn"), key="cnn")


def deep_unit_wants_app():
    """Host: a fresh 784-32-16-10 feed-forward net in the "What a unit wants" view."""
    import jax

    from engine import ffnn
    from engine.models.model import Model
    from ui.views.inside import show_unit_wants

    arch = ffnn.Architecture((32, 16), "tanh")
    show_unit_wants(Model(ffnn.FAMILY, arch, ffnn.init_params(jax.random.PRNGKey(1), arch), {}),
                    key="ff")


def conv_cells_app():
    """Host: the default CNN on test digit #300 (a 3) in the "Convolution, cell by cell" view."""
    from engine.app.predict import load_default_model
    from engine.data.mnist import as_float, embedded_split
    from ui.views.inside import show_conv_cells

    show_conv_cells(load_default_model("cnn"), as_float(embedded_split().x_test[300]))


def heatmap(chart) -> np.ndarray:
    """The z matrix of a chart's first trace (plotly sends arrays as typed base64 data)."""
    z = json.loads(chart.proto.spec)["data"][0]["z"]
    shape = tuple(int(n) for n in z["shape"].split(","))
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)


def host(app) -> AppTest:
    at = AppTest.from_function(app, default_timeout=APP_TIMEOUT).run()
    assert_calm(at)
    return at


def charts(at: AppTest) -> str:
    """Every chart's spec on the page, joined."""
    return " ".join(chart.proto.spec for chart in at.get("plotly_chart"))


def ask(at: AppTest, *views: str) -> None:
    """Press each heavy view's button (key: view + "_go"); nothing of it is computed before."""
    for view in views:
        at.button(key=f"{view}_go").click().run()
        assert_calm(at)


def test_one_step_shows_every_phase_and_explains_a_cell():
    at = host(one_step_app)
    at.button(key="ff_step_all").click().run()
    assert_calm(at)
    code = " ".join(c.value for c in at.code)
    assert "x (4,784) @ W1 (784,256) + b1 (256,) -> z1 (4,256) -> relu -> a1 (4,256)" in code
    assert "dL/dlogits = (softmax - onehot) / B" in code
    assert "delta1 = (delta2 @ W2^T) * relu'(z1)" in code
    captions = " ".join(c.value for c in at.caption)
    assert "max |by hand - jax.grad| over dW1 and db1" in captions
    assert any(m.label == "Loss (by hand)" for m in at.metric)
    at.number_input(key="ff_step_cell_row").set_value(3).run()
    assert "the sum of 784 products" in " ".join(m.value for m in at.markdown)
    assert "The 8 largest:" in " ".join(m.value for m in at.markdown)
    assert len(at.dataframe[0].value) == 8
    at.selectbox(key="ff_step_cell_kind").set_value("dw").run()  # a sum over the batch of 4
    said = " ".join(m.value for m in at.markdown)
    assert "the sum of 4 products" in said and "Each one:" in said and "largest" not in said
    assert len(at.dataframe[0].value) == 4  # issue 27: "The 8 largest" headed 4 rows
    at.button(key="ff_step_update").click().run()
    assert "W2 after = W2 + step (256,10)" in " ".join(c.value for c in at.code)


def test_one_step_refuses_a_cell_outside_and_an_empty_batch():
    at = host(one_step_app)
    assert "Press a phase to take the step" in said(at) and not at.code  # nothing computed yet
    at.button(key="ff_step_forward").click().run()
    at.number_input(key="ff_step_cell_row").set_value(4).run()
    assert_calm(at)
    assert "outside this 4x256 matrix: row 0 to 3" in said(at)
    at.number_input(key="ff_step_cell_layer").set_value(9).run()
    assert "Layer 9 does not exist here: choose 1 to 2" in said(at)
    at.multiselect(key="ff_step_batch").set_value([]).run()
    assert_calm(at)
    assert "The batch is empty" in said(at)


@pytest.mark.slow
def test_the_projector_places_every_test_digit_and_refuses_a_digit_not_there():
    at = host(projector_app)
    assert not at.get("plotly_chart")  # nothing computed before it is asked for
    ask(at, "cnn_projection")
    chart = at.get("plotly_chart")[0]
    assert "The test digits at block 1 (14x14x16)" in chart.proto.spec
    assert '"name":"my drawing"' in chart.proto.spec and '"symbol":"star"' in chart.proto.spec
    assert [caption for image in at.get("image") for caption in image.captions][0].startswith(
        "#0: a 0, read as ")
    at.selectbox(key="cnn_projector_layer").set_value("logits (10)").run()
    assert_calm(at)
    assert "The test digits at logits (10)" in at.get("plotly_chart")[0].proto.spec
    at.number_input(key="cnn_projector_digit").set_value(1000).run()
    assert_calm(at)
    assert "There is no digit #1000: choose 0 to 999." in said(at)


def test_a_silent_layer_is_drawn_as_one_axis():
    """All 1,000 digits give the same activations: PCA keeps one axis, the plot stays up."""
    at = host(dead_layer_projector_app)
    ask(at, "ff_projection")
    spec = at.get("plotly_chart")[0].proto.spec
    assert "The test digits at hidden layer 1 (1001 units)" in spec and "PC 2" not in spec


def test_the_feedforward_room_has_its_new_tabs():
    at = open_page(FF, tab="One step")
    assert {"One step", "Projector", "What a unit wants"} <= {tab.label for tab in at.tabs}
    assert at.button(key="ff_step_all")
    open_tab(at, FF, "Projector")
    ask(at, "ff_projection")
    assert "The test digits at hidden layer 1 (256 units)" in charts(at)
    open_tab(at, FF, "What a unit wants")
    ask(at, "ff_actmax")
    assert "What each class's score wants" in charts(at)  # one hidden layer: the classes only
    assert "units of the second and deeper layers are offered" in " ".join(
        c.value for c in at.caption)


@pytest.mark.slow
def test_the_feedforward_room_steps_and_projects_the_learners_drawing():
    """Issue 15: the digit drawn in the Sketch tab joins the One step batch with a label the
    learner picks, and is placed among the test digits in the projector."""
    from ui.sketch import canvas_key

    at = open_page(FF, tab="Projector")
    ask(at, "ff_projection")
    open_tab(at, FF, "One step")
    at.multiselect(key="ff_step_batch").set_value([-1, 0]).run()
    at.button(key="ff_step_forward").click().run()
    assert_calm(at)
    assert "Draw a digit in the Sketch tab to use it here." in said(at)
    assert "x (1,784) @ W1" in " ".join(c.value for c in at.code)  # the drawing left out
    open_tab(at, FF, "Sketch a digit")
    at.session_state[canvas_key("ff")] = canvas_state(mnist_on_canvas(mnist_digit(7)))
    at.run()
    open_tab(at, FF, "One step")  # the batch picked before is still picked
    assert at.selectbox(key="ff_step_drawing_label").value == 7  # the model's reading
    at.selectbox(key="ff_step_drawing_label").set_value(2).run()
    at.button(key="ff_step_loss").click().run()
    assert_calm(at)
    assert "x (2,784) @ W1" not in " ".join(c.value for c in at.code)  # Loss only now
    one_hot = [heatmap(chart) for chart in at.get("plotly_chart")
               if "onehot(labels)" in chart.proto.spec][0]
    assert one_hot.shape == (2, 10) and one_hot[1].argmax() == 2  # the drawing, labelled 2
    open_tab(at, FF, "Projector")
    assert '"name":"your drawing"' in charts(at) and '"symbol":"star"' in charts(at)


@pytest.mark.slow
def test_after_a_run_the_projector_slides_through_its_snapshots():
    at = open_page(FF, tab="Projector")
    ask(at, "ff_projection")
    assert not [s for s in at.slider if s.key == "ff_projector_step"]  # the default: no run
    at.text_input(key="ff_hidden").set_value("32")
    at.number_input(key="ff_epochs").set_value(1)
    at.button(key="ff_start").click().run()
    try:
        run_until_done(at, "ff_room")
    finally:
        leave_no_run(at, "ff_room")
    assert_calm(at)
    slider = at.slider(key="ff_projector_step")
    steps = at.session_state["ff_room"].run.view().latest.history.snapshot_steps
    assert len(steps) >= 2 and slider.value == len(steps)  # the end of the run
    assert "every snapshot's activations are projected" in " ".join(c.value for c in at.caption)
    final = [c for c in at.get("plotly_chart") if "The test digits at" in c.proto.spec][0]
    slider.set_value(1).run()
    assert_calm(at)
    early = [c for c in at.get("plotly_chart") if "The test digits at" in c.proto.spec][0]
    assert f"hidden layer 1 (32 units), step {steps[0]} of the run" in early.proto.spec
    assert early.proto.spec != final.proto.spec  # the points moved


@pytest.mark.slow
def test_what_a_unit_wants_shows_every_filter_and_every_class():
    at = host(unit_wants_app)
    ask(at, "cnn_actmax")
    spec = at.get("plotly_chart")[0].proto.spec
    assert "What each filter of block 1 wants (the 3x3 pixels it sees" in spec
    assert '"15: ' in spec and '"16: ' not in spec  # 16 filters, numbered from 0
    at.radio(key="cnn_actmax_group").set_value("The 10 classes").run()
    assert_calm(at)
    spec = at.get("plotly_chart")[0].proto.spec
    assert "What each class's score wants" in spec and '"9: ' in spec


def test_what_a_unit_wants_looks_into_a_deeper_feedforward_layer():
    at = host(deep_unit_wants_app)
    assert at.radio(key="ff_actmax_group").options == ["Hidden layer 2: its 16 units",
                                                       "The 10 classes"]
    ask(at, "ff_actmax")
    spec = at.get("plotly_chart")[0].proto.spec
    assert "What each unit of hidden layer 2 wants" in spec
    assert '"15: ' in spec and '"16: ' not in spec
    at.radio(key="ff_actmax_group").set_value("The 10 classes").run()
    assert_calm(at)
    assert "What each class's score wants" in at.get("plotly_chart")[0].proto.spec


@pytest.mark.slow
def test_the_convolution_cell_by_cell_agrees_with_the_feature_map_and_jax():
    at = host(conv_cells_app)
    code = " ".join(c.value for c in at.code)
    assert "+ bias" in code and "relu(z) = " in code and "(the feature map holds " in code
    assert "dL/dK[1,1] = sum over every position (i, j) of x[i+1, j+1] × dL/dz[i, j]" in code
    assert "dL/dx[14,14] = sum over filters f and kernel entries (a, b)" in code
    at.number_input(key="cnn_conv_pixel_col").set_value(28).run()
    assert "There is no pixel (14, 28): rows and columns go from 0 to 27" in said(at)
    at.number_input(key="cnn_conv_a").set_value(3).run()
    assert_calm(at)
    assert "There is no kernel entry (3, 1) of filter 0" in said(at)
    at.number_input(key="cnn_conv_row").set_value(28).run()
    assert_calm(at)
    assert "There is no cell (28, 14) of filter 0: rows and columns go from 0 to 27" in said(at)


@pytest.mark.slow
def test_the_cnn_room_has_its_new_tabs():
    at = open_page("pages/cnn.py", tab="Projector")
    assert {"Projector", "What a unit wants", "Convolution, cell by cell"} <= {
        tab.label for tab in at.tabs}
    ask(at, "cnn_projection")
    assert "The test digits at block 1 (14x14x16)" in charts(at)
