"""The Layer health tab's figures (ui.views.health): axes a learner can read."""

import json

import numpy as np

from engine.explain.health import HealthSeries, bin_edges
from ui.views.health import activation_heatmaps_figure, lines_figure


def series(steps: list[int], layers: int = 3) -> HealthSeries:
    evaluations, hidden = len(steps), layers - 1
    return HealthSeries(np.array(steps), np.ones((evaluations, hidden, 40), int),
                        bin_edges("relu"), np.zeros((evaluations, hidden)),
                        np.full((evaluations, hidden), np.nan), np.zeros((evaluations, hidden)),
                        np.geomspace(1e-4, 1.0, evaluations * layers).reshape(-1, layers),
                        np.full((evaluations, layers), -3.0))


def test_the_heatmaps_step_axis_ends_at_the_last_evaluation():
    """Issue 27: with thinned snapshots the last cell reached ~4,600 in a 3,700-step run."""
    fig = json.loads(activation_heatmaps_figure(series([3, 100, 2000, 3700]),
                                                ["a", "b", "c"]).to_json())
    axes = [v for k, v in fig["layout"].items() if k.startswith("xaxis")]
    assert axes and all(axis["range"] == [0, 3700] for axis in axes)


def test_a_log_axis_spanning_decades_labels_only_powers_of_ten():
    """Issue 27: the gradient-norm axis labelled its minor ticks ("5 4 3 2 0.1 9 8 7 6")."""
    run = series([10, 20, 30])
    wide = lines_figure(run, run.grad_norms, ["a", "b", "c"], "t", "g", log_y=True)
    assert wide.layout.yaxis.dtick == 1
    narrow = lines_figure(run, np.full((3, 3), 0.5), ["a", "b", "c"], "t", "g", log_y=True)
    assert narrow.layout.yaxis.dtick is None  # under a decade: plotly's own ticks, or none
