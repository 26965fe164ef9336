"""CNN: a convolution written by hand, trained in seconds; its filters, feature maps and
saliency on screen."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from engine import cnn
from engine.data import as_float
from engine.predict import Model, cnn_model
from engine.settings import limits
from ui import charts
from ui.cnn_views import (
    filters_figure,
    prediction_history_figure,
    show_digit,
    show_feature_maps,
    show_saliency,
)
from ui.evaluation import show_evaluation
from ui.loaders import load_embedded_dataset
from ui.models import forget_trained_model
from ui.room_model import RoomModel
from ui.sketch import preprocess_or_explain, sketch_input
from ui.state import ensure_router, reset_room
from ui.training import live_panel, refused, run_buttons, start_run

ensure_router()

OPTIMIZER_NAMES = {"adam": "Adam", "momentum": "SGD + momentum (0.9)", "sgd": "plain SGD"}
POOL_NAMES = {"max": "max-pool 2×2", "avg": "average-pool 2×2", "none": "no pooling"}
FOLLOW_SOURCES = {"test": "a test digit", "sketch": "my own drawing"}
state = st.session_state


# --- the session's model: trained here, or the default -----------------------------------------


def run_model_parts() -> tuple[cnn.CNNSpec, dict]:
    """The architecture and metadata (all but the metrics) of the CNN the session's run
    trains."""
    config: cnn.TrainingConfig = state["cnn_run_config"]
    return config.spec, {"training": config.to_metadata()}


def describe_trained(model: Model, status: str) -> str:
    """How the page names a CNN trained here, whose run ended with `status`."""
    return f"your CNN ({model.describe()}), trained here ({status})"


def describe_default(model: Model) -> str:
    """How the page names the pretrained default CNN."""
    return (f"the pretrained default CNN ({model.describe()}, "
            f"{model.metadata['metrics']['test_accuracy']:.1%} on the test digits)")


MODELS = RoomModel(
    prefix="cnn_", kind=cnn.training.MODEL_KIND, read_model_file=cnn.read_checkpoint,
    build=cnn_model, run_parts=run_model_parts, describe_trained=describe_trained,
    trained_slot=lambda model: "cnn", default_slot=lambda: "cnn",
    describe_default=describe_default)


def reset() -> None:
    """Stop any run, forget the session's CNN, put every control back to its default."""
    reset_room("cnn_", "cnn_run", ("cnn_model", "cnn_adopted_run", "cnn_run_config",
                                    "cnn_run_follow"))
    forget_trained_model("cnn")


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


def draw_latest_filters(snapshots: tuple[cnn.Snapshot, ...], key: str) -> None:
    """The live panel's extra: the first layer's filters as they are now."""
    st.plotly_chart(filters_figure(snapshots[-1].filters, "First-layer filters, live (red +, "
                                                          "blue −)"),
                    key=f"{key}_filters_chart", width="stretch")


def evaluated_labels(model: Model, images: np.ndarray) -> np.ndarray:
    """The model's labels for the test digits, computed once per model and session."""
    cached = state.get("cnn_eval")
    if cached is None or cached[0] is not model:
        cached = (model, cnn.predict_labels(model.params, as_float(images),
                                            spec=model.architecture))
        state["cnn_eval"] = cached
    return cached[1]


# --- page ----------------------------------------------------------------------------------

st.title(":material/grid_on: CNN")
st.markdown(
    "A convolutional net slides small filters over the image and learns what to look for. "
    "**The convolution is written here**: each kernel offset is one shifted slice of the image, "
    "the slices are stacked, and one matrix multiply does the rest (im2col), which is several "
    "times faster on a CPU than the library's own convolution. `jax.grad` differentiates it, "
    "and the tests check it against `lax.conv_general_dilated`."
)

MODELS.restore_linked_run()
MODELS.adopt_finished_run()
split = load_embedded_dataset().split

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
        follow_label = f"test digit #{int(index)} (a {int(split.y_test[int(index)])})"
with digit_column:
    if follow is not None:
        show_digit(follow, f"what the net sees: {follow_label}")

st.subheader("2 · Train")
with st.container(border=True):
    row = st.columns(5)
    row[0].text_input("Filters per conv block", key="cnn_filters",
                      help="One number per block, e.g. 16, 32 for two blocks. Each block is conv "
                           "→ ReLU → pooling.")
    row[1].selectbox("Kernel size", [3, 5, 7], key="cnn_kernel", format_func=lambda k: f"{k}×{k}")
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
        st.slider("Augmentation: random shifts (pixels)", 0, 4, key="cnn_shift",
                  help="Each training digit moves by up to this many pixels, a new shift every "
                       "time: the net learns that a digit is the same a little off-centre, "
                       "as drawn digits often are.")
        st.checkbox("Cosine decay", key="cnn_decay",
                    help="The step size glides from the learning rate down to 0 over the run: "
                         "big steps first, fine ones at the end.")
    row = st.columns([4, 1, 1, 1])
    row[0].caption(f"{len(split.x_train):,} training digits; validation and test accuracy are "
                   "measured twice per epoch. The defaults reach about 98% in a few seconds.")
    start = run_buttons(row[1:], prefix="cnn_", start_label="Train", reset=reset,
                        reset_help="Stop, forget the trained CNN, restore the defaults")

if start:
    problems: list[str] = []
    try:
        config = config_from_controls()
        problems += cnn.limit_problems(config, limits())
    except ValueError as error:  # ArchitectureError is a ValueError too
        problems.append(f"This network cannot be built: {error}.")
    if not refused("cnn_run", problems):
        context = {"cnn_run_config": config, "cnn_run_follow": (follow, follow_label)}
        state.update(context)
        state["cnn_run"] = start_run(
            lambda stop, config=config, follow=follow: cnn.training_run(config, split, stop=stop,
                                                                        follow=follow),
            kind=cnn.training.MODEL_KIND, context=context,
            model_file=partial(cnn.checkpoint_bytes, config.spec, training=config.to_metadata()))

if "cnn_run" in state:
    live_panel(state["cnn_run"], key="cnn_live", draw_snapshot=draw_latest_filters)
else:
    st.caption("Press **Train**: the curves, the progress and the first layer's filters appear "
               "here and change as the net learns; the page stays usable meanwhile.")

model, model_label = MODELS.current_model()
st.subheader("3 · Inside the net")
st.markdown(f"Shown: {model_label}.")
inside, history, evaluation = st.tabs(["Look inside", "Training history", "Evaluation"])

with inside:
    if follow is None:
        st.info("Draw a digit above (or follow a test digit) to look inside the net.")
    else:
        probabilities = model.predict_proba(follow[None])[0]
        guess = int(probabilities.argmax())
        left, middle, right = st.columns([1, 1, 2])
        with left:
            show_digit(follow, follow_label)
        with middle:
            show_saliency(model, follow, guess)
        right.plotly_chart(charts.probability_bars_figure(
            probabilities, f"It reads a {guess} ({probabilities[guess]:.0%})"),
            key="cnn_probability_chart", width="stretch")
        st.markdown("**Feature maps**: what each filter of each conv layer responds to in this "
                    "digit. The first layer finds strokes and edges; later layers combine them.")
        show_feature_maps(model, follow)

with history:
    run = state.get("cnn_run")
    final = None if run is None else run.view()
    if final is not None and final.active:
        st.info("Training: its history can be scrubbed here once the run ends.")
    elif final is None or final.latest is None or not final.latest.snapshot:
        st.info("Train a net (section 2): every evaluation records its filters and its answer "
                "for the followed digit, and here you can scrub back through them.")
    else:
        event = final.latest
        snapshots: tuple[cnn.Snapshot, ...] = event.snapshot
        steps = event.history.eval_steps
        steps_per_epoch = event.total_steps // event.epochs
        _, followed_label = state["cnn_run_follow"]
        at = st.select_slider("What the net looked like at step", options=list(range(len(steps))),
                              value=len(steps) - 1, key=f"cnn_history_{run.id}",
                              format_func=lambda i: f"{steps[i]} (epoch "
                                                    f"{steps[i] / steps_per_epoch:.1f})")
        left, right = st.columns([3, 2])
        left.plotly_chart(filters_figure(snapshots[at].filters, f"First-layer filters at step "
                                                                f"{steps[at]}"),
                          key="cnn_history_filters_chart", width="stretch")
        if snapshots[at].probabilities is None:
            right.info("No digit was followed during this run.")
        else:
            shown = snapshots[at].probabilities
            right.plotly_chart(charts.probability_bars_figure(
                shown, f"Its answer for {followed_label} at step {steps[at]}"),
                key="cnn_history_bars_chart", width="stretch")
            st.plotly_chart(prediction_history_figure(
                steps, np.stack([s.probabilities for s in snapshots]), steps_per_epoch,
                marked_step=steps[at]), key="cnn_history_lines_chart", width="stretch")

with evaluation:
    show_evaluation(split.x_test, split.y_test, evaluated_labels(model, split.x_test), key="cnn")
