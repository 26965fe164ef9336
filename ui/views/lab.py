"""The sketch lab's pieces: each model's answer to a drawing, and inputs that are no digit."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.app.predict import probabilities_of
from engine.data.mnist import N_CLASSES
from engine.explain.confidence import tempered, unfamiliar_inputs
from ui.figures.charts import IDLE_BAR, probability_bars_figure
from ui.figures.pictures import show_digit
from ui.models import ModelChoice
from ui.state import remembered

NOT_SURE = 0.5  # a top probability below this is shown as "not sure"
WAITING = "–"  # the top guess shown before there is a drawing
BARS_HEIGHT = 230  # px: three bar charts side by side stay compact
TEMPERATURES = [2 ** (k / 2) for k in range(-4, 5)]  # 0.25 to 4, each step x1.41
TEMPERATURE_HELP = ("The probabilities are softmax(logits / T). T > 1 flattens them, T < 1 "
                    "sharpens them; the order of the ten bars, and so the guess, never changes. "
                    "T = 1 is the model as trained.")


def top_guess(probabilities: np.ndarray) -> tuple[int, float]:
    """(most probable digit, its probability) of probabilities (10,)."""
    digit = int(np.argmax(probabilities))
    return digit, float(probabilities[digit])


def is_unsure(probabilities: np.ndarray) -> bool:
    """Whether the model's best guess is below NOT_SURE: a coin toss, not an answer."""
    return top_guess(probabilities)[1] < NOT_SURE


def temperature_slider(key: str) -> float:
    """The softmax temperature T the bars are shown at (1: the model's own probabilities)."""
    return st.select_slider("Softmax temperature", TEMPERATURES, key=remembered(key, 1.0),
                            format_func=lambda t: f"T = {t:.2g}", help=TEMPERATURE_HELP)


def show_answer(choice: ModelChoice, probabilities: np.ndarray | None,
                temperature: float = 1.0) -> None:
    """One model's column: its name and source, top guess, confidence and all ten bars.

    probabilities: (10,), or None when the slot has no model (the reason is shown instead);
    shown re-tempered to `temperature` (engine.explain.confidence.tempered).
    """
    if choice.model is None or probabilities is None:
        st.markdown(f"**{choice.title}**")
        st.info(choice.unavailable or "No model is available here yet.")
        return
    if temperature != 1.0:
        probabilities = tempered(probabilities, temperature)
    st.markdown(f"**{choice.title}**", help=choice.model.describe())
    st.caption(choice.source)
    digit, confidence = top_guess(probabilities)
    st.metric("Top guess", f"{digit}?" if is_unsure(probabilities) else str(digit))
    st.caption(f"Not sure: only {confidence:.0%} confident" if is_unsure(probabilities)
               else f"{confidence:.0%} confident")
    st.plotly_chart(compact_bars_figure(probabilities), key=f"sk_bars_{choice.slot}",
                    config={"displayModeBar": False})


def show_waiting_answer(choice: ModelChoice) -> None:
    """One model's column before there is a drawing: laid out as `show_answer`'s, a dash for
    the guess and ten empty bars.

    Besides showing what is coming, it has the browser load its chart and metric code while
    the learner draws, not after the pen's lift: one visitor's first answer came 1.45 s after
    the lift without these columns, 0.6-0.9 s with them (the page's CPU ~0.8 s less)."""
    if choice.model is None:
        show_answer(choice, None)  # its name and why it is missing
        return
    st.markdown(f"**{choice.title}**", help=choice.model.describe())
    st.caption(choice.source)
    st.metric("Top guess", WAITING)
    st.caption("waiting for your drawing")
    st.plotly_chart(waiting_bars_figure(), key=f"sk_waiting_bars_{choice.slot}",
                    config={"displayModeBar": False})


def waiting_bars_figure(n: int = N_CLASSES) -> go.Figure:
    """The compact bars of `compact_bars_figure` at zero, unlabelled, none highlighted."""
    spec = _compact_bars(0, n)
    marker = {**spec["data"][0]["marker"], "color": IDLE_BAR}
    bars = {**spec["data"][0], "y": [0.0] * n, "text": [""] * n, "marker": marker}
    return go.Figure({"data": [bars], "layout": spec["layout"]}, _validate=False)


def compacted(figure: go.Figure) -> go.Figure:
    """A probability_bars_figure made compact for a column of the lab: short, tight margins,
    no axis titles, no probability ticks (each bar is labelled)."""
    figure.update_layout(height=BARS_HEIGHT, margin=dict(l=10, r=10, t=10, b=10))
    figure.update_xaxes(title=None)
    figure.update_yaxes(title=None, showticklabels=False)
    return figure


@cache
def _compact_bars(best: int, n: int) -> dict[str, Any]:
    """compacted(probability_bars_figure(...)) of n bars with `best` highlighted, as a plotly
    dict, built once per server for each digit: never mutate it."""
    return compacted(probability_bars_figure(np.eye(n)[best])).to_dict()


def compact_bars_figure(probabilities: np.ndarray) -> go.Figure:
    """The same figure as compacted(probability_bars_figure(probabilities)) in ~0.5 ms instead
    of ~9 (plotly validating every property it is given): a drawing changes only the bars'
    heights and labels, so the rest comes from _compact_bars, unvalidated (it was validated
    once)."""
    probabilities = np.asarray(probabilities, dtype=float)
    spec = _compact_bars(top_guess(probabilities)[0], len(probabilities))
    bars = {**spec["data"][0], "y": probabilities,
            "text": [f"{p:.0%}" for p in probabilities]}  # as probability_bars_figure labels
    return go.Figure({"data": [bars], "layout": spec["layout"]}, _validate=False)


@st.cache_data(show_spinner=False)
def _unfamiliar_inputs() -> dict[str, np.ndarray]:
    """engine.explain.confidence.unfamiliar_inputs, built once per server: {name: (28, 28)}."""
    return unfamiliar_inputs()


def show_unfamiliar_inputs(choices: list[ModelChoice]) -> None:
    """Three inputs that are no digit (noise, a letter, a faint scribble), each with every
    available model's top guess and confidence."""
    models = {c.slot: c.model for c in choices if c.model}
    titles = {c.slot: c.title for c in choices}
    st.markdown("A confident answer is not a correct one: a softmax always spreads 100% over "
                "the ten digits, even for an input that is none of them.")
    for column, (name, image) in zip(st.columns(3), _unfamiliar_inputs().items(), strict=True):
        with column:
            show_digit(image, name)
            guesses = {slot: top_guess(p) for slot, p in probabilities_of(models, image).items()}
            st.markdown("  \n".join(f"{titles[slot]}: **{digit}** at {confidence:.0%}"
                                     for slot, (digit, confidence) in guesses.items()))
