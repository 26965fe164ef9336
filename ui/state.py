"""Per-session state, seeded once. Widget keys are prefixed per page (ad_, ff_, cnn_, sk_)."""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from engine.playground import broken
from ui.rooms import ROOMS

# One section per page; each page adds the defaults for its own widget keys here.
DEFAULTS: dict[str, Any] = {
    # home / shared
    # autodiff playground (ad_); variable inputs ad_var_<name> are seeded by the page
    "ad_formula": "tanh(w*x + b)",
    "ad_step": 1,
    "ad_lr": 0.05,
    "ad_descent_steps": 40,
    "ad_digit": 0,  # memorise one digit: which digit (0-9) and which example of it (1-based)
    "ad_digit_example": 1,
    "ad_overfit_steps": 60,
    "ad_overfit_lr": 0.01,
    "ad_overfit": None,  # last overfit run: {"index": training image, "history": [OverfitStep]}
    # the training rooms (ff_, cnn_) are seeded by ui.rooms, from the engine's TrainingConfig()
    # sketch lab (sk_)
    "sk_crop": True,  # preprocessing steps, each switchable to show why it matters
    "sk_fit": True,
    "sk_strokes": True,
    "sk_centre": True,
    # break-it lab (bk_)
    "bk_bug": broken.NO_BUG,  # the switch: no bug until the learner (or a lesson) picks one
}


ROUTED = "routed"  # set once the router has run in this session
REMEMBERED = "remembered"  # session state: the keys of the widgets remembered() seeded


def defaults() -> dict[str, Any]:
    """Every widget's default: the pages' own and the training rooms' controls."""
    return {**DEFAULTS, **{key: value for room in ROOMS
                          for key, value in room.default_controls().items()}}


def init_state() -> None:
    """Seed every missing key with its default. Safe to call on every rerun."""
    for key, value in defaults().items():
        if key not in st.session_state:
            st.session_state[key] = value
    st.session_state[ROUTED] = True


def keep_widget_values() -> None:
    """Keep the value of every seeded widget, drawn in this rerun or not. Call before any
    widget (`ensure_router` does, first in every page).

    Streamlit forgets the value of a widget that a rerun did not draw (another page, a tab that
    was not open): a room's controls would return to their defaults whenever the learner left
    the room. Writing a value back through the Session State API keeps it (Streamlit's
    documented way); that is silent only for widgets that take their default from the session,
    so a kept widget is drawn without a `value=`: its default is seeded by `init_state` or by
    `remembered`.
    """
    for key in [*defaults(), *st.session_state.get(REMEMBERED, ())]:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def remembered(key: str, default: Any) -> str:
    """`key`, seeded with `default` once and kept from then on while its widget is not drawn
    (see `keep_widget_values`). For a widget drawn without a default of its own, in a view
    that is not always drawn (a tab computed only when open):
    `st.slider("Grid", 5, 41, key=remembered("ff_grid", 21))`."""
    st.session_state.setdefault(REMEMBERED, set()).add(key)
    st.session_state.setdefault(key, default)
    return key


def ensure_router() -> None:
    """Hand a page over to the router when Streamlit ran it directly, then keep the widget
    values (`keep_widget_values`). Call first in every page.

    A folder named pages/ beside streamlit_app.py makes Streamlit start in its legacy multipage
    mode, which lasts until some session calls st.navigation: a fresh server's very first visit,
    if it is a deep link such as /sketch, runs pages/sketch.py without the router (no state, a
    sidebar of file names). Leaving that mode and rerunning gives the router the same page
    (both modes name it by its URL path). Streamlit 1.67 has no setting to skip the legacy
    mode while keeping the pages/ folder, so this is the one place that works around it, with
    the private API pinned by the streamlit<2 requirement; tests/e2e/test_rooms_browser.py opens
    a deep link to every room on a fresh server. AppTest starts every run in the legacy mode, but
    after its first run the router has seeded the session, so nothing (no click) is lost there.
    """
    if PagesManager.uses_pages_directory and not st.session_state.get(ROUTED):
        PagesManager.uses_pages_directory = False
        st.rerun()
    keep_widget_values()
