"""Feed-forward net: train an MLP on MNIST live, differentiated by our engine or by jax.grad."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from engine import ffnn
from engine.app.settings import limits
from engine.nn.layers import ACTIVATIONS
from ui.lazy import lazy_tabs
from ui.loaders import load_embedded_dataset
from ui.rooms import FEEDFORWARD
from ui.rooms.controls import INIT_NAMES, LOSS_NAMES, OPTIMIZER_NAMES, shift_slider
from ui.rooms.page import current_model, open_room, room_buttons, show_room_run
from ui.rooms.state import RoomState, room_state
from ui.state import ensure_router
from ui.training import refused, run_service
from ui.views.datasets import DOWNLOAD_FIRST, chosen_dataset, dataset_picker
from ui.views.evaluation import reads_classes_of, show_evaluation
from ui.views.ffnn import draw_weights, show_sketch_answer, show_twin_check, sketch_digit
from ui.views.health import preset_requested, show_layer_health, show_range_test
from ui.views.inside import show_unit_wants
from ui.views.landscape import show_landscape
from ui.views.model_file import show_model_file
from ui.views.projector import show_projector
from ui.views.step import show_one_step

ensure_router()
state = st.session_state


def config_from_controls() -> tuple[ffnn.TrainingConfig, dict | None, list[str]]:
    """(the run the controls describe, the parameters to start from or None, the problems
    that forbid it). With "Continue", the current model's architecture and weights."""
    problems: list[str] = []
    params = None
    if state["ff_continue"]:
        model, _ = current_model(FEEDFORWARD)
        arch = model.architecture
        params = {name: np.asarray(value) for name, value in model.params.items()}
    else:
        try:
            arch = ffnn.Architecture(ffnn.parse_hidden(state["ff_hidden"]), state["ff_activation"],
                                     state["ff_init"], bool(state["ff_batch_norm"]))
        except ValueError as error:
            problems.append(f"{str(error)[0].upper()}{str(error)[1:]}.")
            arch = ffnn.Architecture()
    config = ffnn.TrainingConfig(arch, state["ff_loss"], state["ff_optimizer"],
                                 float(state["ff_learning_rate"]), int(state["ff_batch_size"]),
                                 int(state["ff_epochs"]), state["ff_backend"],
                                 max_shift=int(state["ff_shift"]),
                                 train_digits=int(state["ff_train_digits"]))
    return config, params, problems + ffnn.limit_problems(config, limits())


def start_training(room: RoomState, split, dataset_name: str) -> None:
    """Start a run of the controls' settings (or say why not); it becomes the room's run."""
    config, params, problems = config_from_controls()
    digits = config.train_digits or len(split.x_train)
    if digits > len(split.x_train):
        problems.append(f"This data set has {len(split.x_train):,} training digits, not "
                        f"{digits:,}: choose fewer (0 takes them all).")
    elif config.batch_size > digits:
        problems.append(f"A batch of {config.batch_size} is more than the {digits} training "
                        "digits.")
    if refused(room.run, problems):
        return
    batch = ffnn.twin_batch(split)
    run = run_service().start(
        lambda stop: ffnn.training_run(config, split, params=params, stop=stop, twin_batch=batch,
                                       health_batch=batch, dataset=dataset_name),
        kind=FEEDFORWARD.kind, settings=config.to_metadata())
    st.session_state[FEEDFORWARD.key] = RoomState(run=run, model=room.model, label=room.label)
    if state["ff_continue"]:
        st.info(f"Continuing from {current_model(FEEDFORWARD)[1]}.")


# --- page ----------------------------------------------------------------------------------

st.title(":material/hub: Feed-forward net")
st.markdown(
    "A multilayer perceptron reads the 784 pixels of a digit and scores the 10 classes. "
    "**One forward definition, two differentiators**: the same code is differentiated by our "
    "own reverse-mode engine (numpy) or traced by `jax.grad` (jitted, steps run in `lax.scan` "
    "chunks). Train it, watch it learn, and check that both engines compute the same gradients."
)
# Every message of the page goes here, so nothing below moves when one comes or goes.
messages = st.container()
with messages:
    room = open_room(FEEDFORWARD)
    dataset = chosen_dataset("ff")  # None until the picked set is downloaded

with st.container(border=True):
    continuing = state["ff_continue"]
    row = st.columns(5)
    row[0].radio("Differentiated by", list(ffnn.BACKENDS), key="ff_backend",
                 format_func=ffnn.BACKENDS.get, horizontal=True)
    row[1].text_input("Hidden layers (units, comma-separated)", key="ff_hidden",
                      disabled=continuing,
                      help="e.g. 256, or 256,128 for two layers; empty for none. When "
                           "continuing, the current model's layers are kept.")
    row[1].checkbox("Batch norm", key="ff_batch_norm", disabled=continuing,
                    help="Normalise each hidden layer's inputs to its activation over the "
                         "batch, then scale and shift them by two trained numbers per unit "
                         "(Ioffe and Szegedy 2015). A trained net predicts with statistics "
                         "taken on 512 training digits.")
    row[2].selectbox("Activation", list(ACTIVATIONS), key="ff_activation",
                     disabled=continuing)
    row[3].selectbox("Initialisation", list(INIT_NAMES), key="ff_init", format_func=INIT_NAMES.get,
                     disabled=continuing, help="How the weights are drawn before training.")
    row[4].selectbox("Loss", list(LOSS_NAMES), key="ff_loss", format_func=LOSS_NAMES.get)
    row = st.columns(5)
    row[0].selectbox("Optimizer", list(OPTIMIZER_NAMES), key="ff_optimizer",
                     format_func=OPTIMIZER_NAMES.get)
    row[1].number_input("Learning rate", min_value=1e-6, max_value=1e6, step=0.001,
                        format="%g", key="ff_learning_rate")
    row[2].number_input("Batch size", min_value=1, max_value=60_000, step=16, key="ff_batch_size")
    row[3].number_input("Epochs", min_value=1, max_value=10_000, key="ff_epochs")
    with row[4]:
        shift_slider(FEEDFORWARD)
    row = st.columns([2, 1.2, 1.6, 1, 1, 1])
    dataset_picker("ff", row[0])
    row[1].number_input("Training digits (0: all)", min_value=0, max_value=60_000, step=100,
                        key="ff_train_digits",
                        help="Train on only this many of the data set's training digits, evenly "
                             "spread over it. A big net on a few hundred digits learns them by "
                             "heart: watch its training digits leave validation behind.")
    row[2].checkbox("Continue training", key="ff_continue",
                    help="Start from the weights of the model below (trained, uploaded or "
                         "default) instead of fresh ones; its architecture is kept. The rest "
                         "starts afresh: the optimizer's memory (Adam's running averages, "
                         "momentum) from zero, so the loss may jump at first, and the curves "
                         "and epochs count from 0.")
    start = room_buttons(row[3:], FEEDFORWARD, start_label="Start",
                        reset_help="Stop, forget the trained model, restore the defaults",
                        starting=preset_requested())

shown = dataset or load_embedded_dataset()  # the picked set once present
split = shown.split
with messages:
    if start and dataset is None:
        st.warning(DOWNLOAD_FIRST)
    elif start:
        start_training(room, split, dataset.name)
        room = room_state(FEEDFORWARD)

hidden = room.run.settings.get("arch", {}).get("hidden") if room.run else None
show_room_run(FEEDFORWARD, draw_snapshot=partial(draw_weights, n_units=(hidden or [10])[0]),
              idle="Press **Start** to train. The curves, the progress and the first-layer "
                   "weights appear here and update live; the page stays usable meanwhile.")

model, label = current_model(FEEDFORWARD)
st.subheader("The model")
st.markdown(f"Below: {label}.")

(evaluation, layer_health, twin, sketch, terrain, one_step, projection, unit_wants,
 model_file) = lazy_tabs(["Evaluation", "Layer health", "Twin-engine check", "Sketch a digit",
                          "Landscape", "One step", "Projector", "What a unit wants",
                          "Model file"], key="ff_tab")
with sketch:  # always drawn: the canvas holds the drawing the other tabs use
    drawing = sketch_digit(label)
if evaluation.open and reads_classes_of(model, shown):
    with evaluation:
        show_evaluation(model, split.x_test, split.y_test, key="ff")
if layer_health.open:
    with layer_health:
        show_layer_health(room.run)
        show_range_test(*config_from_controls(), split)
if twin.open:
    with twin:
        show_twin_check(model, state["ff_loss"], split)
if sketch.open and drawing is not None:
    with sketch:
        show_sketch_answer(model, drawing)
if terrain.open:
    with terrain:
        show_landscape(FEEDFORWARD, model, split)
if one_step.open:
    with one_step:
        show_one_step(model, split.x_test, split.y_test, loss_name=state["ff_loss"],
                      optimizer=state["ff_optimizer"],
                      learning_rate=float(state["ff_learning_rate"]), drawing=drawing)
if projection.open:
    with projection:
        show_projector(model, split.x_test, split.y_test, key="ff", drawing=drawing,
                       drawing_label="your drawing")
if unit_wants.open:
    with unit_wants:
        show_unit_wants(model, key="ff")
if model_file.open:
    with model_file:
        show_model_file(FEEDFORWARD, model)
