"""Figure builders: right traces, right data, and the helpers behind them."""

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from ui.figures import charts, explain_charts


def test_tile_lays_images_out_in_rows_with_empty_gaps():
    images = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    mosaic = charts.tile(images, columns=2, gap=1)
    assert mosaic.shape == (3 * 3 - 1, 2 * 4 - 1)
    np.testing.assert_array_equal(mosaic[0:2, 4:7], images[1])
    np.testing.assert_array_equal(mosaic[6:8, 0:3], images[4])
    assert np.isnan(mosaic[2]).all() and np.isnan(mosaic[:, 3]).all()
    assert np.isnan(mosaic[6:8, 4:7]).all()  # the unused last cell


def test_smoothed_follows_a_constant_exactly_and_damps_noise():
    np.testing.assert_allclose(charts.smoothed([2.0] * 50), 2.0)
    noisy = 1 + np.random.default_rng(0).normal(0, 0.5, 400)
    assert charts.smoothed(noisy)[100:].std() < noisy[100:].std() / 3


def test_every_figure_wears_the_house_template_and_styled_sets_the_house_layout():
    # The white template comes as plotly's default (set by ui.figures.charts), on styled figures and
    # on figures that never call styled (the attribution maps).
    white = pio.templates["plotly_white"]
    fig = charts.styled(go.Figure(go.Bar(x=[1, 2], y=[3, 4])), "A title", height=222)
    maps = explain_charts.adversarial_figure(np.zeros((28, 28)), np.ones((28, 28)))
    assert fig.layout.template == white and maps.layout.template == white
    assert fig.layout.title.text == "A title" and fig.layout.height == 222
    assert fig.layout.margin.t == charts.MARGIN["t"] and fig.layout.legend.orientation == "h"


def test_loss_curve_has_raw_and_smoothed_lines_in_epochs_and_thins_long_runs():
    fig = charts.loss_curve_figure(np.linspace(2, 0.1, 10_000), steps_per_epoch=100, epochs=100)
    raw, smooth = fig.data
    assert isinstance(fig, go.Figure) and len(raw.y) <= 2000 and len(smooth.y) == len(raw.y)
    assert raw.x[-1] == pytest.approx(100, abs=0.1)
    low, high = fig.layout.xaxis.range  # the whole run, with a small margin on both sides
    assert -5 < low < 0 and 100 < high < 105


def test_accuracy_curve_in_percent():
    fig = charts.accuracy_curve_figure([10, 20], [0.5, 0.8], [0.4, 0.9], steps_per_epoch=10)
    np.testing.assert_allclose(fig.data[0].y, [50, 80])
    np.testing.assert_allclose(fig.data[1].x, [1, 2])
    assert fig.layout.yaxis.range[0] == pytest.approx(35)


def test_weight_grid_scales_each_image_to_its_own_largest_weight():
    images = np.stack([np.full((28, 28), 0.01), np.full((28, 28), -5.0)])
    images[0, 0, 0] = 0.02
    fig = charts.weight_grid_figure(images, columns=2)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.nanmax(z) == pytest.approx(1) and np.nanmin(z) == pytest.approx(-1)
    assert z[0, 1] == pytest.approx(0.5)


def test_gallery_captions_each_digit():
    fig = charts.digit_gallery_figure(np.zeros((3, 28, 28)), ["1 (true 7)", "a", "b"], columns=2)
    assert [a.text for a in fig.layout.annotations] == ["1 (true 7)", "a", "b"]


def test_confusion_matrix_figure_shows_the_counts():
    matrix = np.arange(100).reshape(10, 10)
    fig = charts.confusion_matrix_figure(matrix)
    np.testing.assert_array_equal(fig.data[0].z, matrix)


def test_probability_bars_highlight_the_most_probable_digit():
    probabilities = np.full(10, 0.05)
    probabilities[7] = 0.55
    fig = charts.probability_bars_figure(probabilities)
    colours = fig.data[0].marker.color
    assert colours[7] != colours[0] and len(set(colours)) == 2


def test_gradient_differences_on_a_log_axis_with_zeros_at_the_floor():
    fig = charts.gradient_difference_figure(["layer 1", "layer 2"], [0.0, 1e-7], [0.0, 1e-6])
    assert fig.layout.yaxis.type == "log"
    np.testing.assert_allclose(fig.data[0].y, [1e-12, 1e-7])


def test_a_one_epoch_runs_last_evaluation_is_inside_the_axis_not_on_its_edge():
    """Issue 18, item 18: a 1-epoch accuracy chart was one dot cut at the right edge."""
    fig = charts.accuracy_curve_figure([57], [0.9], [0.91], steps_per_epoch=57, epochs=1)
    low, high = fig.layout.xaxis.range
    assert low < 0 and high > 1  # the run, 0 to 1 epoch, with room on both sides
    assert fig.data[0].mode == "lines+markers"


def test_the_gradient_difference_chart_draws_the_tolerance():
    fig = charts.gradient_difference_figure(["layer 1"], [1e-8], [2e-6], tolerance=1e-4)
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == 1e-4


def test_digits_take_the_article_of_their_spoken_name():
    assert [charts.a_digit(d) for d in (0, 1, 7, 8)] == ["a 0", "a 1", "a 7", "an 8"]
    assert charts.reads_title(8, 0.97) == "It reads an 8 (97%)"
