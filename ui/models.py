"""Which model each sketch-lab slot offers: the one trained in this session, else the default.

The training rooms hand a finished model over with `keep_trained_model(slot, model)`; the sketch
lab (and any room's own sketch) asks `current_models()`. The default models are loaded, put on the
JAX device and compiled once per server (`st.cache_resource`), and never mutated.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from engine.app.predict import DEFAULT_MODELS, Model, load_default_models

TRAINED = "trained in this session"
DEFAULT = "pretrained default"
TRAINED_MODELS_KEY = "trained_models"  # session state: {slot: Model}, written by the rooms


@dataclass(frozen=True)
class ModelChoice:
    """One slot's model: slot is a DEFAULT_MODELS key ("ffnn-autodiff", "ffnn-jax", "cnn"),
    source says where the model comes from (TRAINED or DEFAULT), model is None when neither
    exists, and then `unavailable` says why."""

    slot: str
    title: str
    source: str
    model: Model | None
    unavailable: str = ""


@st.cache_resource(show_spinner="Loading the models…")
def load_defaults() -> tuple[dict[str, Model], dict[str, str]]:
    """Every default model, loaded and compiled once per server, and why any are missing."""
    return load_default_models()


def keep_trained_model(slot: str, model: Model) -> None:
    """Offer `model` in `slot` (a DEFAULT_MODELS key) for the rest of this session."""
    if slot not in DEFAULT_MODELS:
        raise ValueError(f"unknown model slot {slot!r}; choose one of {sorted(DEFAULT_MODELS)}")
    st.session_state.setdefault(TRAINED_MODELS_KEY, {})[slot] = model


def forget_trained_model(slot: str) -> None:
    """Go back to the default model in `slot` (e.g. when its room resets its training)."""
    st.session_state.get(TRAINED_MODELS_KEY, {}).pop(slot, None)


def current_models() -> list[ModelChoice]:
    """One ModelChoice per slot, in DEFAULT_MODELS order: this session's model where the learner
    trained one, the pretrained default otherwise."""
    trained = st.session_state.get(TRAINED_MODELS_KEY, {})
    defaults, missing = load_defaults()
    choices = []
    for slot, title in DEFAULT_MODELS.items():
        if slot in trained:
            choices.append(ModelChoice(slot, title, TRAINED, trained[slot]))
        else:
            choices.append(ModelChoice(slot, title, DEFAULT, defaults.get(slot),
                                       missing.get(slot, "")))
    return choices
