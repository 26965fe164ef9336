"""The sketch lab's pieces: each model's answer to a drawing, and what the CNN looks at."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine import cnn
from engine.confidence import tempered, unfamiliar_inputs
from engine.data import N_CLASSES
from engine.predict import Model, probabilities_of
from engine.preprocess import FIELD
from ui.charts import IDLE_BAR, probability_bars_figure
from ui.models import ModelChoice

NOT_SURE = 0.5  # a top probability below this is shown as "not sure"
WAITING = "–"  # the top guess shown before there is a drawing
BARS_HEIGHT = 230  # px: three bar charts side by side stay compact
VIEW_PIXEL = 7  # screen pixels per model-input pixel in the CNN's views (28 -> 196 px)
HEAT = np.array([1.0, 0.15, 0.05], dtype=np.float32)  # the saliency overlay's red
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
    return st.select_slider("Softmax temperature", TEMPERATURES, value=1.0, key=key,
                            format_func=lambda t: f"T = {t:.2g}", help=TEMPERATURE_HELP)


def show_answer(choice: ModelChoice, probabilities: np.ndarray | None,
                temperature: float = 1.0) -> None:
    """One model's column: its name and source, top guess, confidence and all ten bars.

    probabilities: (10,), or None when the slot has no model (the reason is shown instead);
    shown re-tempered to `temperature` (engine.confidence.tempered).
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


def enlarged(rgb: np.ndarray, factor: int = VIEW_PIXEL) -> np.ndarray:
    """(h, w, 3) image with each pixel a crisp factor x factor block."""
    return rgb.repeat(factor, axis=0).repeat(factor, axis=1)


def saliency_overlay(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """The digit (28, 28) in [0, 1], dimmed to grey, with |saliency| (28, 28) painted red on
    top, strongest pixel full red: RGB uint8 (28, 28, 3)."""
    heat = np.abs(np.asarray(saliency, dtype=np.float32))
    heat = heat / heat.max() if heat.max() > 0 else heat
    grey = 0.35 * np.asarray(image, dtype=np.float32)[..., None]
    rgb = grey * (1 - heat[..., None]) + heat[..., None] * HEAT
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def feature_map_mosaic(maps: np.ndarray, columns: int = 4, gap: int = 1) -> np.ndarray:
    """Feature maps (h, w, filters) side by side in rows of `columns`, each scaled by its own
    maximum, separated by mid-grey gaps: RGB uint8 (rows*(h+gap)-gap, columns*(w+gap)-gap, 3)."""
    maps = np.asarray(maps, dtype=np.float32)
    h, w, n = maps.shape
    rows = -(-n // columns)
    mosaic = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), 0.5, np.float32)
    for i in range(n):
        top, left = (i // columns) * (h + gap), (i % columns) * (w + gap)
        peak = maps[..., i].max()
        mosaic[top:top + h, left:left + w] = maps[..., i] / peak if peak > 0 else 0.0
    return np.repeat((mosaic * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def show_cnn_view(model: Model, image: np.ndarray, digit: int) -> None:
    """What the CNN looks at in `image` (28, 28): its saliency for `digit`, and what the
    first layer's filters respond to."""
    saliency = np.asarray(cnn.saliency(model.params, image, digit, spec=model.architecture))
    first_layer = np.asarray(cnn.feature_maps(model.params, image, spec=model.architecture)[0])
    left, right = st.columns([1, 2])
    left.image(enlarged(saliency_overlay(image, saliency)), width=FIELD * VIEW_PIXEL,
               caption=f"Saliency: the pixels that move the score of {digit} most")
    right.image(enlarged(feature_map_mosaic(first_layer, columns=8), factor=3),
                caption=f"First layer: what each of its {first_layer.shape[-1]} filters "
                        "responds to (bright = strong)")


@st.cache_data(show_spinner=False)
def _unfamiliar_inputs() -> dict[str, np.ndarray]:
    """engine.confidence.unfamiliar_inputs, built once per server: {name: (28, 28)}."""
    return unfamiliar_inputs()


def show_unfamiliar_inputs(choices: list[ModelChoice]) -> None:
    """Three inputs that are no digit (noise, a letter, a faint scribble), each with every
    available model's top guess and confidence."""
    from ui.cnn_views import show_digit  # it imports this module: import it when first used

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
