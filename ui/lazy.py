"""Heavy views wait until they are looked at: tabs that draw only when open, work done once per
model, and views that wait for a button.

Every widget a rerun meets runs its view, so a room that drew all its tabs recomputed the
predictions, projections and landscapes nobody had opened. A room's tabs come from `lazy_tabs`;
the page draws a tab's content under `if tab.open:`. A widget inside such a tab takes its
default from the session (`ui.state.remembered`), so its value outlives the reruns it is not
drawn in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from engine.models.model import Model


def lazy_tabs(labels: Sequence[str], key: str) -> Sequence[Any]:
    """Tabs whose `.open` says which one the learner is on: opening another reruns the page,
    which then draws only that one. The open tab's label is kept under `key`."""
    return st.tabs(list(labels), key=key, on_change="rerun")


def kept(key: str, model: Model, choice: Any, compute: Callable[[], Any]) -> Any:
    """compute() once per model and choice: kept in the session under `key`, so a rerun (any
    widget) does not redo seconds of work, and a new model or choice replaces it."""
    memo = st.session_state.get(key)
    if memo is not None and memo[0] is model and memo[1] == choice:
        return memo[2]
    value = compute()
    st.session_state[key] = (model, choice, value)
    return value


def asked_for(key: str, label: str) -> bool:
    """Whether this session has asked for the view under `key`: a button until it has, then
    always (a new model or choice recomputes without asking again). For views that cost seconds
    even in an open tab."""
    wanted = f"{key}_wanted"
    if not st.session_state.get(wanted) and st.button(label, key=f"{key}_go", type="primary"):
        st.session_state[wanted] = True
    return bool(st.session_state.get(wanted))
