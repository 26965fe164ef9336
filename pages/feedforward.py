"""Feed-forward net: train an MLP on MNIST live, differentiated by our engine or by jax.grad."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from engine import ffnn
from engine.checkpoint import CheckpointError
from engine.data import DatasetError, as_float
from engine.predict import Model, ffnn_model
from engine.settings import limits
from ui import charts
from ui.evaluation import show_evaluation
from ui.loaders import load_embedded_dataset, load_full_mnist_dataset
from ui.models import forget_trained_model
from ui.room_model import RoomModel
from ui.sketch import preprocess_or_explain, sketch_input
from ui.state import ensure_router, reset_room
from ui.training import live_panel, refused, run_buttons, start_run

ensure_router()

LOSS_NAMES = {"cross_entropy": "softmax cross-entropy", "mse": "squared error on one-hot"}
OPTIMIZER_NAMES = {"adam": "Adam", "momentum": "SGD + momentum (0.9)", "sgd": "plain SGD"}
state = st.session_state


# --- the session's model: trained here, uploaded, or the default -----------------------------


def backend_of(model: Model) -> str | None:
    """The backend that trained `model`, as its metadata says; None when it does not say one."""
    training = model.metadata.get("training")
    backend = training.get("backend") if isinstance(training, dict) else None
    return backend if backend in ffnn.BACKENDS else None


def run_model_parts() -> tuple[ffnn.Architecture, dict]:
    """The architecture and metadata (all but the metrics) of the model the session's run
    trains."""
    config = state["ff_run_config"]
    return config.arch, {"training": config.to_metadata(), "dataset": state["ff_run_dataset"]}


def sketch_slot(model: Model) -> str | None:
    """The sketch-lab slot of the backend that trained `model`; None when that is unknown."""
    backend = backend_of(model)
    return None if backend is None else f"ffnn-{backend}"


def describe_trained(model: Model, status: str) -> str:
    """How the page names a model trained here, whose run ended with `status`."""
    return (f"your model ({model.describe()}, trained with "
            f"{ffnn.BACKENDS.get(backend_of(model), 'an unknown engine')}, {status})")


def describe_default(model: Model) -> str:
    """How the page names the default model of the chosen backend."""
    return (f"the default model ({model.describe()}, trained with "
            f"{ffnn.BACKENDS[state['ff_backend']]}, "
            f"{model.metadata['metrics']['test_accuracy']:.1%} on the test digits)")


MODELS = RoomModel(
    prefix="ff_", kind=ffnn.MODEL_KIND, read_model_file=ffnn.read_checkpoint, build=ffnn_model,
    run_parts=run_model_parts, describe_trained=describe_trained, trained_slot=sketch_slot,
    default_slot=lambda: f"ffnn-{state['ff_backend']}", describe_default=describe_default)


def reset() -> None:
    """Stop any run, forget the session's model, put every control back to its default."""
    reset_room("ff_", "ff_run", ("ff_model", "ff_adopted_run", "ff_twin_now", "ff_upload_error"))
    for backend in ffnn.BACKENDS:
        forget_trained_model(f"ffnn-{backend}")


def read_uploaded_model() -> None:
    """Load a newly uploaded model file as the session's model, or say why it cannot be."""
    upload = state.get("ff_model_file")
    if upload is None or state.get("ff_model_file_id") == upload.file_id:
        return
    state["ff_model_file_id"] = upload.file_id
    state.pop("ff_upload_error", None)
    if upload.size > limits().max_upload_mb * 2**20:
        state["ff_upload_error"] = (f"{upload.name} is {upload.size / 2**20:.0f} MB; this server "
                                    f"takes model files up to {limits().max_upload_mb} MB.")
        return
    try:
        arch, params, metadata = ffnn.read_checkpoint(upload.getvalue())
    except CheckpointError as error:
        state["ff_upload_error"] = f"{upload.name}: {error}"
        return
    state["ff_model"] = (ffnn_model(arch, params, metadata),
                         f"the uploaded model {upload.name} ({arch.describe()})")


def model_file_bytes(model: Model) -> bytes:
    """The model as a .npz model file, its metadata carried over."""
    info = {k: v for k, v in model.metadata.items() if k not in ("model", "architecture",
                                                                   "format")}
    params = {name: np.asarray(value) for name, value in model.params.items()}
    return ffnn.checkpoint_bytes(model.architecture, params, **info)


def draw_snapshot(snapshot: ffnn.Snapshot, key: str) -> None:
    """First-layer weights as images, and the latest twin-engine check, side by side."""
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.weight_grid_figure(
        snapshot.weights, columns=16, title="First-layer weights: what each hidden unit looks "
        "for (red +, blue -)"), key=f"{key}_weights_chart", width="stretch")
    if snapshot.twin:
        right.plotly_chart(twin_figure(snapshot.twin, "Twin-engine check (our engine vs "
                                                      "jax.grad), latest"),
                           key=f"{key}_twin_chart", width="stretch")


def twin_figure(differences: list[ffnn.LayerDifference], title: str):
    return charts.gradient_difference_figure([d.layer for d in differences],
                                             [d.max_abs for d in differences],
                                             [d.max_rel for d in differences], title)


# --- page ----------------------------------------------------------------------------------

st.title(":material/hub: Feed-forward net")
st.markdown(
    "A multilayer perceptron reads the 784 pixels of a digit and scores the 10 classes. "
    "**One forward definition, two differentiators**: the same code is differentiated by our "
    "own reverse-mode engine (numpy) or traced by `jax.grad` (jitted, steps run in `lax.scan` "
    "chunks). Train it, watch it learn, and check that both engines compute the same gradients."
)

MODELS.restore_linked_run()
MODELS.adopt_finished_run()
read_uploaded_model()

datasets = {"embedded": load_embedded_dataset()}
try:
    full = load_full_mnist_dataset()
except DatasetError as error:
    st.warning(f"Full MNIST is configured but unusable: {error}")
    full = None
if full is not None:
    datasets["full"] = full
if state["ff_dataset"] not in datasets:
    state["ff_dataset"] = "embedded"

with st.container(border=True):
    row = st.columns(4)
    row[0].radio("Differentiated by", list(ffnn.BACKENDS), key="ff_backend",
                 format_func=ffnn.BACKENDS.get, horizontal=True)
    row[1].text_input("Hidden layers (units, comma-separated)", key="ff_hidden",
                      help="e.g. 256, or 256,128 for two layers; empty for none")
    row[2].selectbox("Activation", ["relu", "tanh", "sigmoid"], key="ff_activation")
    row[3].selectbox("Loss", list(LOSS_NAMES), key="ff_loss", format_func=LOSS_NAMES.get)
    row = st.columns(4)
    row[0].selectbox("Optimizer", list(OPTIMIZER_NAMES), key="ff_optimizer",
                     format_func=OPTIMIZER_NAMES.get)
    row[1].number_input("Learning rate", min_value=1e-6, max_value=1e6, step=0.001,
                        format="%g", key="ff_learning_rate")
    row[2].number_input("Batch size", min_value=1, max_value=60_000, step=16, key="ff_batch_size")
    row[3].number_input("Epochs", min_value=1, max_value=10_000, key="ff_epochs")
    row = st.columns([2, 2, 1, 1, 1])
    row[0].selectbox("Data set", list(datasets), key="ff_dataset",
                     format_func=lambda name: datasets[name].name)
    row[1].checkbox("Continue from the current model", key="ff_continue",
                    help="Start from the weights of the model below (trained, uploaded or "
                         "default) instead of fresh ones; its architecture is kept.")
    start = run_buttons(row[2:], prefix="ff_", start_label="Start", reset=reset,
                        reset_help="Stop, forget the trained model, restore the defaults")

if start:
    problems: list[str] = []
    try:
        hidden = ffnn.parse_hidden(state["ff_hidden"])
    except ValueError as error:
        problems.append(f"{str(error)[0].upper()}{str(error)[1:]}.")
        hidden = ()
    arch = ffnn.Architecture(hidden, state["ff_activation"])
    params = None
    if state["ff_continue"]:
        model, label = MODELS.current_model()
        arch = model.architecture
        params = {name: np.asarray(value) for name, value in model.params.items()}
        st.info(f"Continuing from {label}.")
    config = ffnn.TrainingConfig(arch, state["ff_loss"], state["ff_optimizer"],
                                 float(state["ff_learning_rate"]), int(state["ff_batch_size"]),
                                 int(state["ff_epochs"]), state["ff_backend"])
    split = datasets[state["ff_dataset"]].split
    problems += ffnn.limit_problems(config, limits())
    if config.batch_size > len(split.x_train):
        problems.append(f"A batch of {config.batch_size} is more than the "
                        f"{len(split.x_train)} training digits.")
    if not refused("ff_run", problems):
        batch = ffnn.twin_batch(split)
        context = {"ff_run_config": config, "ff_run_dataset": datasets[state["ff_dataset"]].name}
        state.update(context)
        state["ff_run"] = start_run(
            lambda stop: ffnn.training_run(config, split, params=params, stop=stop,
                                           twin_batch=batch),
            kind=ffnn.MODEL_KIND, context=context,
            model_file=partial(ffnn.checkpoint_bytes, config.arch, training=config.to_metadata(),
                               dataset=context["ff_run_dataset"]))

if "ff_run" in state:
    live_panel(state["ff_run"], key="ff_live", draw_snapshot=draw_snapshot)
else:
    st.caption("Press **Start** to train. The curves, the progress and the first-layer "
               "weights appear here and update live; the page stays usable meanwhile.")

model, label = MODELS.current_model()
st.subheader("The model")
st.markdown(f"Below: {label}.")
split = datasets[state["ff_dataset"]].split

evaluation, twin, sketch, model_file = st.tabs(
    ["Evaluation", "Twin-engine check", "Sketch a digit", "Model file"])

with evaluation:
    predicted = model.predict_proba(as_float(split.x_test)).argmax(axis=1)
    show_evaluation(split.x_test, split.y_test, predicted, key="ff")

with twin:
    st.markdown("One batch of 64 training digits, the current model's parameters, gradients "
                "from **our autodiff engine** and from **jax.grad**: how far apart are they, "
                "layer by layer? (float32 arithmetic: ~1e-7 relative is rounding.)")
    if st.button("Compare the gradients now", key="ff_twin_button"):
        params = {name: np.asarray(value) for name, value in model.params.items()}
        state["ff_twin_now"] = ffnn.gradient_differences(model.architecture, state["ff_loss"],
                                                         params, *ffnn.twin_batch(split))
    if "ff_twin_now" in state:
        st.plotly_chart(twin_figure(state["ff_twin_now"], "Gradient difference per layer"),
                        key="ff_twin_now_chart", width="stretch")

with sketch:
    st.markdown(f"Draw a digit: {label} reads it.")
    pre = preprocess_or_explain(sketch_input("ff"))
    if pre is not None:
        left, right = st.columns([1, 3])
        left.image(np.kron(pre.final, np.ones((8, 8))).clip(0, 1), caption="what the model sees "
                   "(28×28)", width=224)
        probabilities = model.predict_proba(pre.final[None])[0]
        right.plotly_chart(charts.probability_bars_figure(
            probabilities, f"It reads a {int(probabilities.argmax())}"),
            key="ff_sketch_chart", width="stretch")

with model_file:
    st.download_button("Download this model (.npz)", key="ff_download",
                       data=lambda: model_file_bytes(model), on_click="ignore",
                       file_name="glassbox-ffnn.npz", mime="application/octet-stream",
                       icon=":material/download:")
    st.file_uploader("Upload a model file to evaluate it or continue training it",
                     type=["npz"], key="ff_model_file")
    if "ff_upload_error" in state:
        st.error(state["ff_upload_error"])
