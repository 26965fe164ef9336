"""Sketch lab: one drawing through every model, and what each model sees."""

import streamlit as st

from engine import cnn
from engine.app.predict import probabilities_of
from ui.lazy import lazy_tabs
from ui.models import current_models
from ui.sketch import (
    preprocess_or_explain,
    preprocessing_options,
    show_preprocessing_stages,
    show_preprocessing_switches,
    sketch_input,
)
from ui.state import ensure_router
from ui.views.cnn import show_cnn_view
from ui.views.explain import show_adversarial_view, show_attribution_view
from ui.views.lab import (
    is_unsure,
    show_answer,
    show_unfamiliar_inputs,
    show_waiting_answer,
    temperature_slider,
    top_guess,
)
from ui.views.teach import show_teach_view

ensure_router()
LAB_TABS = ["What they answer", "Where they look", "Fool them", "Teach it"]

st.title(":material/draw: Sketch lab")
st.caption("Draw a digit (or upload a photo of one) and every model answers at once. Below, see "
           "the exact 28×28 image they read, then where each model looks and how to fool it.")

drawing = sketch_input("sk")
choices = current_models()  # loaded (once per server) while the learner starts drawing
preprocessed = preprocess_or_explain(drawing, options=preprocessing_options("sk"))

if preprocessed is None:
    st.subheader("What the models will answer")
    for column, choice in zip(st.columns(len(choices)), choices, strict=True):
        with column:
            show_waiting_answer(choice)
else:
    st.subheader("1 · What the models see")
    st.markdown("MNIST's digits were cropped, scaled to fit 20×20 pixels (with strokes about "
                "3 pixels wide) and centred by their centre of mass in a 28×28 square, so the "
                "models only know digits prepared that way. Switch a step off and watch their "
                "answers change.")
    show_preprocessing_stages(preprocessed)
    show_preprocessing_switches("sk")

    models = {c.slot: c.model for c in choices if c.model}
    titles = {c.slot: c.title for c in choices}
    answers = probabilities_of(models, preprocessed.final)
    st.subheader("2 · What the models answer, and why")
    answer_tab, look_tab, fool_tab, teach_tab = lazy_tabs(LAB_TABS, key="sk_tab")

    if answer_tab.open:
        with answer_tab:
            st.markdown("Each model turns the 784 pixels into ten probabilities that add up to "
                        "1; the tallest bar is its guess. The two feed-forward nets (FFNN) share "
                        "one architecture and differ only in who computed their gradients, so "
                        "they should nearly agree.")
            temperature = temperature_slider("sk_temperature")
            for column, choice in zip(st.columns(len(choices)), choices, strict=True):
                with column:
                    show_answer(choice, answers.get(choice.slot), temperature)
            if any(is_unsure(p) for p in answers.values()):
                st.warning("Not sure? Draw the digit bigger and in the middle of the canvas, "
                           "with clear strokes: that is how the training digits looked.",
                           icon=":material/help:")
            unfamiliar = st.expander("Inputs no model was trained for", key="sk_unfamiliar",
                                     icon=":material/help_center:", on_change="rerun")
            if unfamiliar.open:  # the same for every drawing: computed only when looked at
                with unfamiliar:
                    show_unfamiliar_inputs(choices)
            if (cnn_model := models.get("cnn")) is not None and cnn_model.family is cnn.FAMILY:
                digit, _ = top_guess(answers["cnn"])
                st.subheader("What the CNN looks at")
                st.markdown(f"Saliency is the gradient of the CNN's score for {digit} with "
                            "respect to each input pixel: the red pixels would change its mind "
                            "most. The first layer's feature maps show which strokes and edges "
                            "each filter picks up.")
                show_cnn_view(cnn_model, preprocessed.final, digit)

    if look_tab.open and models:
        with look_tab:
            st.markdown("Five ways to ask each model *which pixels made this answer*, side by "
                        "side. Red pixels raise the explained digit's score, blue ones lower "
                        "it. The methods disagree more than you might think.")
            show_attribution_view(models, titles, preprocessed.final, answers)

    if fool_tab.open and models:
        with fool_tab:
            st.markdown("An adversarial attack follows one model's gradient to change every "
                        "pixel by at most *epsilon*, in the direction that hurts its answer "
                        "most. A change you can barely see can flip a confident answer.")
            show_adversarial_view(models, titles, preprocessed.final)

    if teach_tab.open and models:
        with teach_tab:
            st.markdown("Training is many small steps, each nudging the weights so that one "
                        "batch of digits is read better. Take a few of those steps on *your* "
                        "drawing alone, with the label you choose, and see what else moves.")
            show_teach_view(choices, preprocessed.final)
