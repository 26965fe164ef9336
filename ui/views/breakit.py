"""The break-it lab's views: the twin check per place, the loss curves, the guess."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.ffnn.model import TWIN_TOLERANCE
from engine.playground import broken
from ui.figures.charts import smoothed, styled
from ui.loaders import load_embedded_dataset

BUG_KEY = "bk_bug"
MYSTERY = [bug for bug in broken.BUGS if bug != broken.NO_BUG]  # shown unnamed until guessed
PARAMETER_KINDS = {"w": "weights", "b": "bias"}
N_TRAIN = 2048  # training digits the lab draws its batches from


def bug_label(bug: str) -> str:
    """How the switch names a bug without giving it away: "Mystery bug 3"."""
    return "No bug" if bug == broken.NO_BUG else f"Mystery bug {MYSTERY.index(bug) + 1}"


@st.cache_data(show_spinner=False, max_entries=len(broken.BUGS))
def lab_result(bug: str) -> broken.LabResult:
    """The lab run with `bug` on the embedded training digits (deterministic, so cached)."""
    split = load_embedded_dataset().split
    return broken.run_lab(bug, split.x_train[:N_TRAIN], split.y_train[:N_TRAIN])


def check_figure(checks: Sequence[broken.PointCheck]) -> go.Figure:
    """One bar per checked place, from the logits down (top to bottom): max |ours − jax| over
    max |jax| on a log axis, red past the tolerance, grey within it."""
    floor = 1e-9
    names = [c.name if c.kind == "signal" else f"{c.name} ({PARAMETER_KINDS[c.name[0]]})"
             for c in checks]
    fig = go.Figure(go.Bar(
        y=names, x=[max(c.max_rel, floor) for c in checks], orientation="h",
        marker_color=["#b0b0b0" if c.ok else "#d62728" for c in checks],
        hovertemplate="%{y}: %{x:.1e} of the largest gradient<extra></extra>"))
    fig.add_vline(x=TWIN_TOLERANCE, line_dash="dash", line_color="#444",
                  annotation_text="tolerance", annotation_position="top")
    fig.update_xaxes(type="log", title="our gradient vs jax.grad's (relative difference)",
                     exponentformat="e", range=[-9, 2])
    fig.update_yaxes(autorange="reversed")
    return styled(fig, "Where our gradients leave jax.grad's (red)", height=420)


def loss_figure(losses: np.ndarray, healthy: np.ndarray) -> go.Figure:
    """Training loss per step (smoothed) with the bug and with the real engine."""
    fig = go.Figure()
    for values, name, colour in ((healthy, "real engine", "#1f77b4"),
                                 (losses, "with the bug", "#d62728")):
        finite = np.where(np.isfinite(values), values, np.nan)
        fig.add_trace(go.Scatter(x=np.arange(1, len(values) + 1), y=smoothed(finite), name=name,
                                 line_color=colour))
    top = float(np.nanmax(np.where(np.isfinite(losses), losses, np.nan)))
    fig.update_yaxes(title="loss", range=[0, min(max(top, 2.6), 12)])
    fig.update_xaxes(title="step")
    return styled(fig, "The consequence: training loss", height=420)


def verdict(result: broken.LabResult) -> None:
    """A sentence on what the twin check found, as st.success or st.error."""
    wrong = [c.name for c in result.check if not c.ok]
    if not wrong:
        st.success("The twin check passes: at every place our gradients match jax.grad's to "
                   "float32 rounding.", icon=":material/check_circle:")
    else:
        st.error(f"The twin check fails at {len(wrong)} of {len(result.check)} places: "
                 f"{', '.join(wrong)}. Read from the top: the first red place is just below the "
                 "op that went wrong.", icon=":material/bug_report:")
    if len(result.losses) < len(result.healthy_losses):
        st.warning(f"With the bug the loss stopped being a number after "
                   f"{len(result.losses)} steps: the run was stopped there.")


def guess(bug: str) -> None:
    """The list of suspects; after a guess, the bug named and explained."""
    picked = st.radio("Which bug is it?", MYSTERY, index=None,
                      format_func=lambda b: broken.BUGS[b].title, key=f"bk_guess_{bug}")
    if picked is None:
        st.caption("Make your guess to see the bug explained.")
        return
    if picked == bug:
        st.success(f"Right: “{broken.BUGS[bug].title}”.", icon=":material/check_circle:")
    else:
        st.error(f"Not this one. It was: “{broken.BUGS[bug].title}”.",
                 icon=":material/lightbulb:")
    explain(bug)


def explain(bug: str) -> None:
    """The bug's line of code and why it goes wrong where it does."""
    st.code(broken.BUGS[bug].code, language="python")
    st.markdown(broken.BUGS[bug].explanation)
