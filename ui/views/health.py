"""The rooms' "Layer health" tabs: a diagnosis in words, one overview row, then the
activations, gradients and update ratios of every layer over the run; in the feed-forward room
presets and the learning-rate finder too. `HealthTab` is what differs between the rooms."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine import cnn, ffnn
from engine.cnn.training import health_series as cnn_health_series
from engine.explain import health
from engine.explain.diagnosis import Diagnosis, diagnose_run, run_record
from engine.explain.health import HealthSeries
from engine.explain.lr_finder import RangeTest, ffnn_range_test
from engine.ffnn import Architecture, TrainingConfig
from engine.ffnn.training import health_series
from engine.training.loop import History, seed_key
from engine.training.service import Run, RunView
from engine.training.status import RunStatus
from ui.figures import charts
from ui.figures.charts import styled
from ui.rooms import FEEDFORWARD
from ui.training import refresh_seconds, run_service

# One click each in the layer-health tab: a story of why a net learns or does not.
HEALTH_PRESETS = {
    "vanishing gradients": TrainingConfig(Architecture((64,) * 6, "sigmoid", "tiny"), epochs=3),
    "dead ReLUs": TrainingConfig(Architecture((128, 128), "relu", "he"), learning_rate=0.05,
                                 epochs=3),
    "healthy": TrainingConfig(Architecture((64,) * 6, "relu", "he"), epochs=3),
    "batch norm rescues it": TrainingConfig(Architecture((64,) * 6, "sigmoid", "tiny",
                                                         batch_norm=True), learning_rate=2e-2,
                                            epochs=3),
    "overfitting": TrainingConfig(Architecture((512,)), batch_size=32, epochs=40,
                                  train_digits=200),
}

PRESET_START = "ff_preset_start"  # session state: a preset was chosen, start its run
RANGE_TEST = "ff_range_test"  # session state: (the settings it was for, the last RangeTest)
PRESET_STORIES = {
    "vanishing gradients": "6 sigmoid layers, weights 100 times too small: the gradient "
                           "fades on its way back to the input.",
    "dead ReLUs": "a learning rate 25 times the default: big steps push ReLU units where they "
                  "never fire again.",
    "healthy": "6 ReLU layers with He initialisation: every layer gets a gradient of the "
               "same size.",
    "batch norm rescues it": "the same 6 sigmoid layers and tiny weights, with batch norm "
                             "before each activation (and the ten times larger learning rate "
                             "it tolerates): the gradient reaches the input within a few times "
                             "the output's size and the net learns. The first layer's tiny "
                             "weights take steps large beside them (see its update ratio); the "
                             "loss shows that is fine.",
    "overfitting": "512 units, only 200 training digits, 40 epochs: the net learns those "
                   "digits by heart. On the accuracy chart its training digits (dashed) reach "
                   "100% and leave validation behind.",
}
CHART_NAMES = {"activations": "the activation heatmaps", "gradients": "gradient norm per layer",
               "updates": "update ratio per layer", "loss": "the training-loss chart above",
               "accuracy": "training digits against validation, below"}
STATUS_COLOURS = {"ok": "#2ca02c", "bad": "#d62728"}


def choose_preset(name: str) -> None:
    """Set the room's controls to preset `name`, all but the engine, which stays the visitor's
    choice, and ask the page to start it (an on_click callback: it runs before the widgets are
    drawn)."""
    controls = FEEDFORWARD.controls(HEALTH_PRESETS[name].to_metadata())
    controls.pop("ff_backend", None)
    st.session_state.update(controls)
    st.session_state.update({"ff_continue": False, PRESET_START: True})


def preset_requested() -> bool:
    """Whether a preset button asked for a run (once: the request is consumed)."""
    return bool(st.session_state.pop(PRESET_START, False))


def show_presets() -> None:
    """One button per story; each sets the controls above and starts training."""
    st.markdown("**Presets**: one click sets the controls above and trains; watch the story "
                "unfold below.")
    for column, (name, story) in zip(st.columns(len(HEALTH_PRESETS)), PRESET_STORIES.items(),
                                     strict=True):
        column.button(name[0].upper() + name[1:], key=f"ff_preset_{name.replace(' ', '_')}",
                      on_click=choose_preset, args=(name,), help=story, width="stretch")
        column.caption(story)


def layer_names(n_layers: int, batch_norm: bool = False) -> list[str]:
    """"layer 1", ..., "layer L (output)"; with batch norm the hidden layers are "layer 1 (BN)",
    ...: their activations are read after the batch norm."""
    hidden = " (BN)" if batch_norm else ""
    return [f"layer {i + 1}" + (" (output)" if i == n_layers - 1 else hidden)
            for i in range(n_layers)]


def conv_layer_names(blocks: int) -> list[str]:
    """"conv1", ..., "conv<blocks>", "dense (output)": a CNN's weight layers."""
    return [f"conv{i + 1}" for i in range(blocks)] + ["dense (output)"]


def overview_figure(series: HealthSeries, diagnosis: Diagnosis, names: list[str]) -> go.Figure:
    """One tile per weight layer (L,), named `names`, with its verdict in words (the causes of
    the findings that name it, or "healthy") and in colour, and its latest numbers."""
    last = -1
    unhealthy = np.append(np.fmax(series.dead[last], series.saturated[last]), np.nan)
    verdicts = diagnosis.verdicts()
    texts = []
    for i, name in enumerate(names):
        verdict = f"✗ {', '.join(verdicts[i])}" if verdicts[i] else "✓ healthy"
        lines = [f"<b>{name}</b>", verdict, f"gradient {series.grad_norms[last, i]:.1e}"]
        if np.isfinite(unhealthy[i]):
            word = "dead" if np.isfinite(series.dead[last, i]) else "saturated"
            lines.append(f"{unhealthy[i]:.0%} {word}")
        if np.isfinite(series.update_ratios[last, i]):
            lines.append(f"update 10^{series.update_ratios[last, i]:.1f}")
        texts.append("<br>".join(lines))
    fig = go.Figure(go.Heatmap(
        z=[[1 if v else 0 for v in verdicts]], text=[texts], texttemplate="%{text}", zmin=0,
        zmax=1, colorscale=[[0, STATUS_COLOURS["ok"]], [1, STATUS_COLOURS["bad"]]],
        showscale=False, hoverinfo="text", xgap=4))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return styled(fig, "Every layer: its verdict in words and colour (red: named in a finding "
                       "above) and its latest numbers", height=190)


def marked(names: list[str], named: Collection[int]) -> list[str]:
    """The layers' names, those a finding names marked "✗ layer 2" (a chart's highlight)."""
    return [f"✗ {name}" if i in named else name for i, name in enumerate(names)]


def mark_steps(fig: go.Figure, steps: Collection[int]) -> go.Figure:
    """A dashed red line at each step a finding rests on, on every subplot of `fig`."""
    for step in sorted(steps):
        fig.add_vline(x=step, line_dash="dash", line_color=STATUS_COLOURS["bad"],
                      annotation_text=f"step {step}", annotation_position="top left")
    return fig


def activation_heatmaps_figure(series: HealthSeries, names: list[str],
                               named: Collection[int] = ()) -> go.Figure:
    """Per hidden layer (names: the L weight layers'; those in `named` marked), its
    activations' histogram at each evaluation: step on x, value on y, colour the log of the
    count (a spike at 0 would hide the rest)."""
    n_hidden = series.histograms.shape[1]
    fig = make_subplots(rows=1, cols=max(1, n_hidden), shared_yaxes=True,
                        subplot_titles=marked(names, named)[:n_hidden] or ["no hidden layer"])
    centres = (series.edges[:-1] + series.edges[1:]) / 2
    for i in range(n_hidden):
        fig.add_trace(go.Heatmap(x=series.steps, y=centres,
                                 z=np.log10(1 + series.histograms[:, i].T),
                                 coloraxis="coloraxis"), row=1, col=i + 1)
    fig.update_layout(coloraxis=dict(colorscale="Viridis", colorbar=dict(title="log10 count")))
    fig.update_yaxes(title="activation", col=1)
    # The run's own steps: a heatmap's last cell would otherwise reach past the last evaluation.
    fig.update_xaxes(title="step", row=1, range=[0, int(series.steps[-1])])
    return styled(fig, "Activations over time, each hidden layer (on the 64 fixed digits)")


def lines_figure(series: HealthSeries, values: np.ndarray, names: list[str], title: str,
                 y_title: str, log_y: bool, named: Collection[int] = ()) -> go.Figure:
    """One line per weight layer, named `names`: values (E, L) against the evaluation steps.
    The layers in `named` (a finding's) are marked and drawn bold, the others faint."""
    fig = go.Figure([go.Scatter(x=series.steps, y=values[:, i], name=name, mode="lines+markers",
                                line=dict(width=3.5 if i in named else 1.5),
                                opacity=1.0 if not named or i in named else 0.35)
                     for i, name in enumerate(marked(names, named))])
    fig.update_xaxes(title="step")
    fig.update_yaxes(title=y_title, type="log" if log_y else "linear", exponentformat="e")
    finite = values[np.isfinite(values) & (values > 0)] if log_y else values[:0]
    if len(finite) and np.log10(finite.max() / finite.min()) >= 1:
        fig.update_yaxes(dtick=1)  # powers of ten only: no "5 4 3 2 0.1 9 8" minor labels
    styled(fig, title, height=380)
    # Below the plot: up to 9 layers' names would cover the title.
    fig.update_layout(legend=dict(orientation="h", y=-0.3, x=0, xanchor="left", yanchor="top"))
    return fig


def update_ratio_figure(series: HealthSeries, names: list[str], named: Collection[int] = ()
                        ) -> go.Figure:
    """The update ratios (E, L) per layer, the usual band [-4, -2] shaded, the -3 guide; the
    layers in `named` marked."""
    fig = lines_figure(series, series.update_ratios, names, "Update ratio per layer: "
                       "log10(step size / weight size)", "log10 ratio", log_y=False, named=named)
    low, high = health.UPDATE_RANGE
    fig.add_hrect(y0=low, y1=high, fillcolor="#2ca02c", opacity=0.08, line_width=0)
    fig.add_hline(y=-3, line_dash="dash", line_color="#7f7f7f", annotation_text="-3: a common "
                  "sweet spot")
    return fig


def show_diagnosis(diagnosis: Diagnosis) -> None:
    """Each finding as a warning, surest first, with its advice and the chart that shows it;
    a run with none gets one sentence saying so."""
    if diagnosis.healthy:
        st.success("No problem found in the whole run: the loss fell and stayed down, no layer "
                   "is dead, saturated or a copy of itself, and the gradient reaches every "
                   "layer.", icon=":material/check_circle:")
    for finding in diagnosis.findings:
        st.warning(f"**{finding.cause[:1].upper()}{finding.cause[1:]}.** {finding.problem} "
                   f"{finding.advice} *(See {CHART_NAMES[finding.chart]}.)*",
                   icon=":material/warning:")



@dataclass(frozen=True)
class HealthTab:
    """What differs between the rooms' Layer health tabs.

    prefix: the widget keys' ("ff"). series: (a run's history, its training settings) -> (its
    HealthSeries, the L weight layers' names), None when it recorded none or its settings are
    unreadable. unit: what a layer's units are called in the diagnosis. counted: what one
    activation histogram counts, in words. note: said after the tab's introduction. start: what
    starts a run, in words. blind_guess: training settings -> the loss of a guess of 1/10 each.
    presets: the feed-forward presets are offered.
    """

    prefix: str
    series: Callable[[History, Mapping[str, Any]], tuple[HealthSeries, list[str]] | None]
    unit: str
    counted: str
    note: str
    start: str
    blind_guess: Callable[[Mapping[str, Any]], float]
    presets: bool = False


def run_diagnosis(series: HealthSeries, names: list[str], view: RunView,
                  settings: Mapping[str, Any], tab: HealthTab) -> Diagnosis:
    """The whole run's diagnosis (engine.explain.diagnosis), its layers named as on screen."""
    return diagnose_run(run_record(
        view.latest.history, series, [name[0].upper() + name[1:] for name in names], settings,
        diverged=view.status == RunStatus.DIVERGED, unit=tab.unit,
        untrained_loss=tab.blind_guess(settings)))


def show_series(series: HealthSeries, names: list[str], view: RunView, tab: HealthTab,
                settings: Mapping[str, Any]) -> None:
    """The diagnosis, the overview row and the three detailed charts of a run's health; names:
    its L weight layers'; settings: its training settings (metadata)."""
    diagnosis = run_diagnosis(series, names, view, settings, tab)
    show_diagnosis(diagnosis)
    key = f"{tab.prefix}_health"
    st.plotly_chart(overview_figure(series, diagnosis, names), key=f"{key}_overview",
                    width="stretch")
    if any(f.chart == "accuracy" for f in diagnosis.findings):  # over- or underfitting's
        # evidence, where the curves parted marked
        history = view.latest.history
        st.plotly_chart(mark_steps(charts.accuracy_curve_figure(
            history.eval_steps, history.val_accuracy, history.test_accuracy,
            train=history.train_accuracy), diagnosis.steps_on("accuracy")),
            key=f"{key}_accuracy", width="stretch")
    st.plotly_chart(mark_steps(activation_heatmaps_figure(
        series, names, diagnosis.named_on("activations")), diagnosis.steps_on("activations")),
        key=f"{key}_activations", width="stretch")
    st.caption(f"Colour: how many activations ({tab.counted}) fall in each value bin, on a log "
               "scale; values beyond the axis count in its top or bottom bin. With ReLU, the "
               "bright line at 0 is the activations that are off.")
    left, right = st.columns(2)
    left.plotly_chart(lines_figure(series, series.grad_norms, names, "Gradient norm per layer",
                                   "‖∂loss/∂W‖", log_y=True,
                                   named=diagnosis.named_on("gradients")),
                      key=f"{key}_gradients", width="stretch")
    right.plotly_chart(update_ratio_figure(series, names, diagnosis.named_on("updates")),
                       key=f"{key}_updates", width="stretch")
    if settings.get("cosine_decay"):
        right.caption("This run's cosine decay takes the step size down to 0 over the run: "
                      "the update ratios fall with it, by design.")


def range_test_figure(found: RangeTest) -> go.Figure:
    """Loss (each step faint, smoothed bold) against the learning rate (log x), the
    suggestion marked."""
    fig = go.Figure([
        go.Scatter(x=found.rates, y=found.losses, name="each step", mode="lines",
                   line=dict(color="#1f77b4", width=1), opacity=0.35),
        go.Scatter(x=found.rates, y=found.smoothed, name="smoothed", mode="lines",
                   line=dict(color="#1f77b4", width=3))])
    if found.suggestion is not None:
        fig.add_vline(x=found.suggestion, line_dash="dash", line_color="#2ca02c")
        # On a log axis an annotation's x is the exponent (add_vline's own would misplace it).
        fig.add_annotation(x=np.log10(found.suggestion), y=1, yref="paper", showarrow=False,
                           xanchor="left", text=f" suggested {found.suggestion:.1e}")
    fig.update_xaxes(type="log", title="learning rate", exponentformat="e")
    fig.update_yaxes(title="training loss")
    return styled(fig, "Loss while the learning rate grows tenfold every few steps")


def use_rate(rate: float) -> None:
    """Put `rate` (two significant digits) in the learning-rate control (an on_click callback)."""
    st.session_state["ff_learning_rate"] = float(f"{rate:.2g}")


def finder_settings(config: ffnn.TrainingConfig) -> ffnn.TrainingConfig:
    """What a range test's result depends on: every setting but the learning rate it sweeps
    and the epochs it never reaches."""
    return replace(config, learning_rate=0.0, epochs=1)


def show_range_test(config: ffnn.TrainingConfig, params: dict | None, problems: list[str],
                    split) -> None:
    """The learning-rate finder for the run Start would begin (config, from params, or fresh
    weights when None; problems: why that run may not start): a button, the loss against the
    rate, the suggestion to use."""
    st.subheader("Learning-rate finder")
    st.markdown("One short pass on a **copy** of the run **Start** would begin (fresh weights, "
                "or the current model's with *Continue*): 100 batches, the learning rate "
                "growing from 1e-5 to 10 (Smith 2017). Where the loss falls fastest is a good "
                "rate; where it climbs, too large. It stops early once the loss blows up.")
    if st.button("Find a learning rate", key="ff_range_test_button"):
        for problem in problems:
            st.error(f"The finder cannot run: {problem}")
        if not problems:
            start = params if params is not None else ffnn.init_params(
                seed_key(config.seed), config.arch)
            st.session_state[RANGE_TEST] = (finder_settings(config), ffnn_range_test(
                config, split.x_train, split.y_train, start))
    measured = st.session_state.get(RANGE_TEST)
    if measured is None:
        return
    if measured[0] != finder_settings(config):
        st.caption("The last range test was for other settings than the controls' now: press "
                   "the button to run it for these.")
        return
    found = measured[1]
    st.plotly_chart(range_test_figure(found), key="ff_range_test_chart", width="stretch")
    if found.diverged_at is not None:
        st.caption(f"The loss blew up at a rate of {found.diverged_at:.1e}: the test stopped "
                   "there.")
    if found.suggestion is None:
        st.warning(found.reason)
        return
    st.info(found.reason)
    st.button(f"Use {found.suggestion:.2g} as the learning rate", key="ff_range_test_use",
              on_click=use_rate, args=(found.suggestion,))


def ffnn_series(history: History, settings: Mapping[str, Any]
                ) -> tuple[HealthSeries, list[str]] | None:
    """A feed-forward run's health and its layers' names (see HealthTab.series)."""
    try:
        arch = ffnn.Architecture.from_metadata(settings.get("arch", {}))
    except ValueError:
        return None
    series = health_series(history.snapshot_steps, history.snapshots, arch)
    return None if series is None else (series, layer_names(arch.n_layers, arch.batch_norm))


def cnn_series(history: History, settings: Mapping[str, Any]
               ) -> tuple[HealthSeries, list[str]] | None:
    """A CNN run's health and its layers' names, conv1 ... dense (see HealthTab.series)."""
    try:
        spec = cnn.CNNSpec.from_metadata(settings.get("spec", {}))
    except ValueError:  # ArchitectureError is a ValueError
        return None
    series = cnn_health_series(history.snapshot_steps, history.snapshots, spec)
    return None if series is None else (series, conv_layer_names(spec.blocks))


FEEDFORWARD_TAB = HealthTab(
    "ff", ffnn_series, "units", "64 digits × the layer's units", "", "**Start** or a preset",
    lambda settings: ffnn.uniform_guess_loss(settings.get("loss", "cross_entropy")),
    presets=True)
CNN_TAB = HealthTab(
    "cnn", cnn_series, "filters", "64 digits × every position × the block's filters",
    "In a conv block a filter plays the part of a unit: it is dead when its ReLU output is 0 at "
    "every position of all 64 digits, and each histogram counts every position of every "
    "filter.", "**Train**", lambda settings: float(np.log(cnn.N_CLASSES)))


def show_layer_health(run: Run | None, tab: HealthTab = FEEDFORWARD_TAB) -> None:
    """The tab: presets (if the room has them), then the health the room's latest run
    recorded, live while it runs."""
    st.markdown("How healthy is each layer? At every evaluation the training step also records, "
                "on 64 fixed digits, each layer's activations, its gradient and how far a step "
                "moves its weights. Dead or saturated units, gradients that fade toward the "
                f"input and steps far too large or small show up here first. {tab.note}")
    if tab.presets:
        show_presets()
    if run is None:
        st.info(f"Layer health is recorded while a net trains: press {tab.start}.")
        return

    @st.fragment(run_every=refresh_seconds(run.view(), run_service()))
    def live() -> None:
        view = run.view()
        found = (tab.series(view.latest.history, run.settings) if view.latest is not None
                 else None)
        if found is None:
            st.info("No layer health yet: it appears at the run's first evaluation." if
                    view.active else "This run kept no layer health (a run brought back by its "
                    "link keeps only its curves): train again to see it.")
            return
        show_series(*found, view, tab, run.settings)

    live()
