"""Per-session state, seeded once. Widget keys are prefixed per page (ad_, ff_, cnn_, sk_)."""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

# One section per page; each page adds the defaults for its own widget keys here.
DEFAULTS: dict[str, Any] = {
    # home / shared
    # autodiff playground (ad_); variable inputs ad_var_<name> are seeded by the page
    "ad_formula": "tanh(w*x + b)",
    "ad_step": 1,
    "ad_lr": 0.05,
    "ad_descent_steps": 40,
    "ad_digit": 0,
    "ad_overfit_steps": 60,
    "ad_overfit_lr": 0.01,
    "ad_overfit": None,  # last overfit run: {"index": digit number, "history": [OverfitStep]}
    # feed-forward net (ff_): the defaults reach 93% test accuracy in a few seconds (T1)
    "ff_backend": "jax",
    "ff_hidden": "256",
    "ff_activation": "relu",
    "ff_loss": "cross_entropy",
    "ff_optimizer": "adam",
    "ff_learning_rate": 0.002,
    "ff_batch_size": 64,
    "ff_epochs": 10,
    "ff_dataset": "embedded",
    "ff_continue": False,
    # CNN (cnn_): the training defaults are engine.cnn.TrainingConfig's (T2: 97.5% within 20 s)
    "cnn_follow": "test",
    "cnn_test_index": 492,  # a 4 that could pass for a 9: its answer moves during training
    "cnn_filters": "16, 32",
    "cnn_kernel": 3,
    "cnn_pool": "max",
    "cnn_padding": "same",
    "cnn_use_dropout": False,
    "cnn_dropout": 0.25,
    "cnn_optimizer": "adam",
    "cnn_learning_rate": 0.005,
    "cnn_batch_size": 64,
    "cnn_epochs": 6,
    "cnn_shift": 2,
    "cnn_decay": True,
    # sketch lab (sk_)
    "sk_crop": True,  # preprocessing steps, each switchable to show why it matters
    "sk_fit": True,
    "sk_centre": True,
}


ROUTED = "routed"  # set once the router has run in this session


def init_state() -> None:
    """Seed every missing key with its default. Safe to call on every rerun."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value
    st.session_state[ROUTED] = True


def ensure_router() -> None:
    """Hand a page over to the router when Streamlit ran it directly. Call first in every page.

    A folder named pages/ beside streamlit_app.py makes Streamlit start in its legacy multipage
    mode, which lasts until some session calls st.navigation: a fresh server's very first visit,
    if it is a deep link such as /sketch, runs pages/sketch.py without the router (no state, a
    sidebar of file names). Leaving that mode and rerunning gives the router the same page
    (both modes name it by its URL path). Private API, pinned by the streamlit<2 requirement;
    the browser test of a deep link guards it. AppTest starts every run in the legacy mode, but
    after its first run the router has seeded the session, so nothing (no click) is lost there.
    """
    if PagesManager.uses_pages_directory and not st.session_state.get(ROUTED):
        PagesManager.uses_pages_directory = False
        st.rerun()


def reset_room(prefix: str, run_key: str, session_keys: tuple[str, ...]) -> None:
    """Stop the room's training run, drop its session-only keys, restore its controls.

    prefix: the room's widget-key prefix ("ff_"); every DEFAULTS key with it is restored.
    """
    state = st.session_state
    if run_key in state:
        state[run_key].stop()
    for key in (run_key, *session_keys):
        state.pop(key, None)
    for key, value in DEFAULTS.items():
        if key.startswith(prefix):
            state[key] = value
