"""CNN: a convolution written by hand, trained in seconds; its filters, feature maps and
saliency on screen."""

from __future__ import annotations

import numpy as np
import streamlit as st

from engine import cnn
from engine.app.settings import limits
from engine.data.mnist import DIGIT_NAMES, as_float
from engine.explain.health import fixed_batch
from ui.figures.charts import a_digit
from ui.figures.pictures import show_digit
from ui.lazy import lazy_tabs
from ui.loaders import load_embedded_dataset
from ui.rooms import CNN
from ui.rooms.controls import KERNEL_SIZES, OPTIMIZER_NAMES, POOL_NAMES, shift_slider
from ui.rooms.page import current_model, open_room, room_buttons, show_room_run
from ui.rooms.state import RoomState, room_state
from ui.sketch import preprocess_or_explain, sketch_input
from ui.state import ensure_router
from ui.training import refused, run_service
from ui.views.cnn import (
    draw_latest_filters,
    scrubbed_step,
    show_history,
    show_inside,
)
from ui.views.datasets import DOWNLOAD_FIRST, chosen_dataset, dataset_picker
from ui.views.evaluation import reads_classes_of, show_evaluation
from ui.views.health import CNN_TAB, show_layer_health
from ui.views.inside import show_conv_cells, show_unit_wants
from ui.views.landscape import show_landscape
from ui.views.model_file import show_model_file
from ui.views.projector import show_projector

ensure_router()

FOLLOW_SOURCES = {"test": "a test digit", "sketch": "my own drawing"}
state = st.session_state


def config_from_controls() -> cnn.TrainingConfig:
    """The run the controls describe. Raises ArchitectureError or ValueError saying what is
    wrong."""
    spec = cnn.CNNSpec(cnn.parse_filters(state["cnn_filters"]), int(state["cnn_kernel"]),
                       state["cnn_pool"], state["cnn_padding"],
                       float(state["cnn_dropout"]) if state["cnn_use_dropout"] else 0.0)
    config = cnn.TrainingConfig(spec, state["cnn_optimizer"], float(state["cnn_learning_rate"]),
                                int(state["cnn_batch_size"]), int(state["cnn_epochs"]),
                                int(state["cnn_shift"]), bool(state["cnn_decay"]))
    cnn.check_config(config)
    return config


def start_training(room: RoomState, dataset, follow: np.ndarray | None, followed: str) -> None:
    """Start a run of the controls' settings (or say why not); it becomes the room's run."""
    problems: list[str] = []
    try:
        config = config_from_controls()
        problems += cnn.limit_problems(config, limits())
    except ValueError as error:  # ArchitectureError is a ValueError too
        problems.append(f"This network cannot be built: {error}.")
    if refused(room.run, problems):
        return
    run = run_service().start(
        lambda stop: cnn.training_run(config, dataset.split, stop=stop, follow=follow,
                                      dataset=dataset.name,
                                      health_batch=fixed_batch(dataset.split)),
        kind=CNN.kind, settings=config.to_metadata())
    state[CNN.key] = RoomState(run=run, model=room.model, label=room.label, followed=followed)


def test_image_label(index: int, label: int, class_names: tuple[str, ...]) -> str:
    """"test digit #3 (a 7)", or for a set of other classes "test image #3 (Trouser)"."""
    if class_names == DIGIT_NAMES:
        return f"test digit #{index} ({a_digit(label)})"
    return f"test image #{index} ({class_names[label]})"


# --- page ----------------------------------------------------------------------------------

st.title(":material/grid_on: CNN")
st.markdown(
    "A convolutional net slides small filters over the image and learns what to look for. "
    "**The convolution is written here**: each kernel offset is one shifted slice of the image, "
    "the slices are stacked, and one matrix multiply does the rest (im2col), which is several "
    "times faster on a CPU than the library's own convolution. `jax.grad` differentiates it, "
    "and the tests check it against `lax.conv_general_dilated`."
)
# Every message of the page goes here, so nothing below moves when one comes or goes.
messages = st.container()
with messages:
    room = open_room(CNN)
    dataset = chosen_dataset("cnn")  # None until the picked set is downloaded
shown = dataset or load_embedded_dataset()  # the picked set once present
split = shown.split

st.subheader("1 · A digit to follow")
source_column, digit_column = st.columns([3, 1])
with source_column:
    st.radio("Follow", list(FOLLOW_SOURCES), key="cnn_follow", format_func=FOLLOW_SOURCES.get,
             horizontal=True, help="Training records what the net says about this digit as it "
                                   "learns; below, you can look inside the net while it reads it.")
    if state["cnn_follow"] == "sketch":
        preprocessed = preprocess_or_explain(sketch_input("cnn"))
        follow = None if preprocessed is None else preprocessed.final
        follow_label = "your drawing"
    else:
        index = st.number_input(f"Test digit number (0 to {len(split.x_test) - 1})",
                                min_value=0, max_value=len(split.x_test) - 1, key="cnn_test_index")
        follow = as_float(split.x_test[int(index)])
        follow_label = test_image_label(int(index), int(split.y_test[int(index)]),
                                        shown.class_names)
with digit_column:
    if follow is not None:
        show_digit(follow, f"what the net sees: {follow_label}")

st.subheader("2 · Train")
with st.container(border=True):
    row = st.columns(5)
    row[0].text_input("Filters per conv block", key="cnn_filters",
                      help="One number per block, e.g. 16, 32 for two blocks. Each block is conv "
                           "→ ReLU → pooling.")
    row[1].selectbox("Kernel size", list(KERNEL_SIZES), key="cnn_kernel",
                     format_func=lambda k: f"{k}×{k}")
    row[2].selectbox("Pooling", list(POOL_NAMES), key="cnn_pool", format_func=POOL_NAMES.get)
    row[3].selectbox("Padding", ["same", "valid"], key="cnn_padding",
                     help="same: zeros around the border keep the map's size; valid: the "
                          "kernel stays inside, each conv shrinks the map by kernel − 1.")
    with row[4]:
        st.checkbox("Dropout", key="cnn_use_dropout",
                    help="During training, zero this fraction of the inputs of the dense layer "
                         "at random, a new choice each step, so no single feature is relied on.")
        st.number_input("Dropout rate", min_value=0.0, max_value=0.95, step=0.05,
                        key="cnn_dropout", disabled=not state["cnn_use_dropout"])
    row = st.columns(5)
    row[0].selectbox("Optimizer", list(OPTIMIZER_NAMES), key="cnn_optimizer",
                     format_func=OPTIMIZER_NAMES.get)
    row[1].number_input("Learning rate", min_value=1e-6, max_value=10.0, step=0.001,
                        format="%g", key="cnn_learning_rate")
    row[2].number_input("Batch size", min_value=1, max_value=len(split.x_train), step=16,
                        key="cnn_batch_size")
    row[3].number_input("Epochs", min_value=1, max_value=limits().max_epochs, key="cnn_epochs")
    with row[4]:
        shift_slider(CNN)
        st.checkbox("Cosine decay", key="cnn_decay",
                    help="The step size glides from the learning rate down to 0 over the run: "
                         "big steps first, fine ones at the end.")
    row = st.columns([2, 2, 1, 1, 1])
    dataset_picker("cnn", row[0])
    row[1].caption(f"{len(split.x_train):,} training images; validation and test accuracy are "
                   "measured twice per epoch. The defaults reach about 98% in a few seconds.")
    start = room_buttons(row[2:], CNN, start_label="Train",
                        reset_help="Stop, forget the trained CNN, restore the defaults")

with messages:
    if start and dataset is None:
        st.warning(DOWNLOAD_FIRST)
    elif start:
        start_training(room, dataset, follow, follow_label)
        room = room_state(CNN)

show_room_run(CNN, draw_snapshot=draw_latest_filters,
              idle="Press **Train**: the curves, the progress and the first layer's filters "
                   "appear here and change as the net learns; the page stays usable meanwhile.")

model, model_label = current_model(CNN)
st.subheader("3 · Inside the net")
st.markdown(f"Shown: {model_label}.")
(inside, history, layer_health, evaluation, terrain, projection, wants, cells,
 model_file) = lazy_tabs(["Look inside", "Training history", "Layer health", "Evaluation",
                          "Landscape", "Projector", "What a unit wants",
                          "Convolution, cell by cell", "Model file"], key="cnn_tab")
view = None if room.run is None else room.run.view()
if inside.open:
    with inside:
        show_inside(model, follow, follow_label)
if history.open:
    with history:
        show_history(view, room.followed or "the digit it followed")
if layer_health.open:
    with layer_health:
        show_layer_health(room.run, CNN_TAB)
if evaluation.open and reads_classes_of(model, shown):
    with evaluation:
        show_evaluation(model, split.x_test, split.y_test, key="cnn")
if terrain.open:
    with terrain:
        show_landscape(CNN, model, split, scrubbed_step(view))
if projection.open:
    with projection:
        show_projector(model, split.x_test, split.y_test, key="cnn", drawing=follow,
                       drawing_label=follow_label)
if wants.open:
    with wants:
        show_unit_wants(model, key="cnn")
if cells.open:
    with cells:
        show_conv_cells(model, follow)
if model_file.open:
    with model_file:
        show_model_file(CNN, model)
