"""The sketch lab's "Teach it" tab: a few training steps on the drawing, what they changed, undo.

While a model is taught, the lab offers the taught copy in its slot (`keep_trained_model`), so
every tab reads it; undo puts back exactly the model that was there before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from engine.explain import teach
from engine.models.model import Model
from ui.figures.charts import (
    a_digit,
    digit_gallery_figure,
    probability_bars_figure,
    weight_grid_figure,
)
from ui.loaders import load_embedded_dataset
from ui.models import (
    TRAINED,
    TRAINED_MODELS_KEY,
    ModelChoice,
    forget_trained_model,
    keep_trained_model,
)
from ui.state import remembered
from ui.views.lab import BARS_HEIGHT, top_guess

TEACHINGS_KEY = "sk_teachings"  # session state: {slot: Teaching}, replaced on every change
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2, 3e-2)
GALLERY = 10  # test digits shown per gallery


@dataclass(frozen=True)
class Teaching:
    """A slot's model while taught: `before` is what undo puts back (the model and where it came
    from), `taught` the model offered now, `labels` every label taught so far, in order, and
    what the teaching changed on the test digits and in the first layer."""

    before: ModelChoice
    taught: Model
    labels: tuple[int, ...]
    changes: teach.AnswerChanges
    weights: teach.WeightChange


def teachings() -> dict[str, Teaching]:
    """This session's taught slots, forgetting any whose model a room has replaced since."""
    kept = st.session_state.get(TEACHINGS_KEY, {})
    trained = st.session_state.get(TRAINED_MODELS_KEY, {})
    return {slot: t for slot, t in kept.items() if trained.get(slot) is t.taught}


def _teach_controls(model: Model, image: np.ndarray) -> tuple[int, int, float]:
    """(label, steps, learning rate) from the controls; the label starts at the model's guess."""
    guess, _ = top_guess(model.predict_proba(image[None])[0])
    trained_rate = teach.training_settings(model)[2]
    rate = min(LEARNING_RATES, key=lambda r: abs(np.log(r / trained_rate)))
    c1, c2, c3 = st.columns(3)
    label = c1.selectbox("This digit is a", range(10), index=guess, key="sk_teach_label",
                         help="The label the model is taught. It starts at the model's guess: "
                              "change it if the guess is wrong.")
    steps = c2.slider("Optimiser steps", 1, teach.MAX_STEPS, key=remembered("sk_teach_steps", 1))
    rate = c3.select_slider("Learning rate", LEARNING_RATES, value=rate, key="sk_teach_rate",
                            format_func=lambda r: f"{r:g}",
                            help="Starts at the rate the model was trained with.")
    return int(label), int(steps), float(rate)


def _teach(choice: ModelChoice, before: Teaching | None, image: np.ndarray, label: int,
           steps: int, rate: float) -> None:
    """Teach the slot's current model, offer the result in its slot, remember how to undo."""
    lesson = teach.teach(choice.model, image, label, steps=steps, learning_rate=rate)
    original = before.before if before else choice
    split = load_embedded_dataset().split
    record = Teaching(original, lesson.model, (*(before.labels if before else ()), label),
                      teach.answer_changes(original.model, lesson.model, split.x_test,
                                           split.y_test),
                      teach.first_layer_change(original.model, lesson.model))
    keep_trained_model(choice.slot, lesson.model)
    st.session_state[TEACHINGS_KEY] = {**teachings(), choice.slot: record}


def _undo(slot: str, teaching: Teaching) -> None:
    """Put back exactly the model the slot had before teaching."""
    if teaching.before.source == TRAINED:
        keep_trained_model(slot, teaching.before.model)
    else:
        forget_trained_model(slot)
    st.session_state[TEACHINGS_KEY] = {s: t for s, t in teachings().items() if s != slot}


def show_teach_view(choices: list[ModelChoice], image: np.ndarray) -> None:
    """Pick a model, teach it the drawing (28, 28), and see what changed; undo."""
    usable = {c.slot: c for c in choices if c.model is not None}
    slot = st.selectbox("Teach the model", list(usable), format_func=lambda s: usable[s].title,
                        index=len(usable) - 1, key="sk_teach_model")
    choice, teaching = usable[slot], teachings().get(slot)
    label, steps, rate = _teach_controls(choice.model, image)
    teach_column, undo_column = st.columns([3, 2])
    if teach_column.button(f"Teach it that this is {a_digit(label)}", key="sk_teach_go",
                           type="primary", icon=":material/school:"):
        try:
            with st.spinner("Taking the training steps…"):
                _teach(choice, teaching, image, label, steps, rate)
        except teach.TeachError as error:
            st.error(f"{error}. Change the setting and try again.")
            return
        st.rerun()
    if teaching is None:
        st.info("The model in the lab is untouched. Teaching changes a copy; undo brings the "
                "original back exactly.", icon=":material/info:")
        return
    if undo_column.button("Undo: back to the model before", key="sk_teach_undo",
                          icon=":material/undo:"):
        _undo(slot, teaching)
        st.rerun()
    _show_teaching(teaching, image)


def _show_teaching(teaching: Teaching, image: np.ndarray) -> None:
    """Before and after on the drawing, the first-layer change, and the test digits moved."""
    taught = ", ".join(str(label) for label in teaching.labels)
    st.markdown(f"Taught so far: **{taught}** ({len(teaching.labels)} press"
                f"{'es' if len(teaching.labels) > 1 else ''}). The lab now uses the taught "
                "model in every tab.")
    label = teaching.labels[-1]
    shares = []
    for column, model, name in zip(st.columns(2), (teaching.before.model, teaching.taught),
                                   ("Before", "After"), strict=True):
        probabilities = model.predict_proba(image[None])[0]
        digit, confidence = top_guess(probabilities)
        shares.append(probabilities[label])
        figure = probability_bars_figure(probabilities,
                                         f"{name}: {a_digit(digit)} ({confidence:.0%})")
        figure.update_layout(height=BARS_HEIGHT + 40)
        column.plotly_chart(figure, key=f"sk_teach_bars_{name}",
                            config={"displayModeBar": False})
    st.caption(f"On this drawing, the probability of {label} went from {shares[0]:.2g} to "
               f"{shares[1]:.2g}. Not enough? Teach again, or take more steps.")
    _show_weight_change(teaching)
    learned = top_guess(teaching.taught.predict_proba(image[None])[0])[0] == label
    _show_test_digits(teaching.changes, learned, label)


def _show_weight_change(teaching: Teaching) -> None:
    change = teaching.weights
    what = teaching.taught.family.unit_noun
    st.plotly_chart(weight_grid_figure(change.change, columns=8,
                                       title=f"How the first layer's {what} changed most"),
                    key="sk_teach_weights", config={"displayModeBar": False})
    st.caption(f"After − before for the {len(change.units)} {what} that moved furthest (units "
               f"{', '.join(str(u) for u in change.units)}): red weights grew, blue ones "
               f"shrank; each image on its own scale, the largest change "
               f"{change.size.max():.4f}."
               + (" Every filter slides over the whole image, so its change sums the gradient "
                  "over every position." if teaching.taught.family.spatial else
                  " Each weight that sees your ink gets a gradient, so the change looks like "
                  "your drawing."))


def hurt_more_than_helped(learned: bool, label: int) -> str:
    """What a lesson that hurt more test digits than it helped did, in words: whether it also
    got the drawing read as `label` (learned) or not."""
    if learned:
        return (f"It now reads your drawing as {a_digit(label)}, and on the way more test "
                "digits went wrong than right: one drawing pulled the weights toward itself "
                "and away from what the model knew. This is why training mixes many digits in "
                "each batch. Undo, or try one step with a smaller learning rate.")
    return (f"It still does not read your drawing as {a_digit(label)}, yet more test digits "
            "went wrong than right: each step moves every weight a little, not only those your "
            "drawing uses, and these steps cost the model some of what it knew. Undo, or take "
            "more steps (or a larger rate) to see the drawing learned.")


def _show_test_digits(changes: teach.AnswerChanges, learned: bool, label: int) -> None:
    split = load_embedded_dataset().split
    helped, hurt = len(changes.helped), len(changes.hurt)
    st.markdown("**The 1,000 test digits** (never trained on): which changed their answer?")
    c1, c2, c3 = st.columns(3)
    c1.metric("Helped (wrong → right)", helped)
    c2.metric("Hurt (right → wrong)", hurt)
    before, after = (np.mean(answers == split.y_test) for answers in (changes.before,
                                                                       changes.after))
    c3.metric("Test accuracy", f"{after:.1%}", f"{after - before:+.1%}")
    for name, indices in (("Helped", changes.helped), ("Hurt", changes.hurt)):
        if len(indices):
            shown = indices[:GALLERY]
            captions = [f"{changes.after[i]} (was {changes.before[i]})" for i in shown]
            st.plotly_chart(digit_gallery_figure(split.x_test[shown] / 255.0, captions,
                                                 title=f"{name}: now (was)"),
                            key=f"sk_teach_{name.lower()}", config={"displayModeBar": False})
    if hurt > helped:
        st.warning(hurt_more_than_helped(learned, label), icon=":material/warning:")
