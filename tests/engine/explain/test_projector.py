"""The projector: PCA against numpy's SVD, and each layer's activations against the models."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine import cnn, ffnn
from engine.data.mnist import embedded_split
from engine.explain.projector import activations, layer_names, pca, snapshot_points
from engine.nn.params import ParameterVectorError, flat_parameters

clouds = st.tuples(st.integers(2, 30), st.integers(1, 40)).flatmap(
    lambda shape: arrays(np.float64, shape, elements=st.floats(-100, 100, width=32)))


@settings(max_examples=60, deadline=None)
@given(points=clouds, k=st.integers(1, 4))
def test_components_are_orthonormal_and_ordered_by_variance(points, k):
    result = pca(points, k)
    k = len(result.variances)
    np.testing.assert_allclose(result.components @ result.components.T, np.eye(k), atol=1e-6)
    assert np.all(np.diff(result.variances) <= 1e-9 * max(1.0, result.variances[0]))
    # the reference: singular values of the centred points, by numpy's SVD
    singular = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    reference = singular[:k] ** 2 / (len(points) - 1)
    scale = 1e-6 * max(1.0, reference[0])
    np.testing.assert_allclose(result.variances, reference, rtol=1e-6, atol=scale)
    # the projected coordinates vary exactly that much along each component
    np.testing.assert_allclose(result.project(points).var(axis=0, ddof=1), reference,
                               rtol=1e-6, atol=scale)
    assert result.explained.sum() <= 1 + 1e-9


def test_the_first_component_beats_every_other_direction():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 5)) * [5, 3, 1, 0.5, 0.1] @ np.linalg.qr(
        rng.normal(size=(5, 5)))[0]
    first = pca(points, 1)
    directions = rng.normal(size=(100, 5))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    assert ((points @ directions.T).var(axis=0, ddof=1) <= first.variances[0] + 1e-9).all()
    assert first.variances[0] == pytest.approx(25, rel=0.25)


def test_too_few_points_are_refused_and_identical_ones_explain_nothing():
    with pytest.raises(ValueError, match="at least two points"):
        pca(np.ones((1, 3)))
    flat = pca(np.ones((5, 3)))
    assert (flat.variances == 0).all() and (flat.explained == 0).all()


@pytest.fixture(scope="module")
def digits():
    return embedded_split().x_test[::97][:6]


def test_ffnn_layers_are_its_forward_pass(defaults, digits):
    model = defaults["ffnn-jax"]
    assert layer_names(model) == ["hidden layer 1 (256 units)", "logits (10)"]
    np.testing.assert_allclose(activations(model, digits, 1),
                               ffnn.logits(model.params, digits, arch=model.architecture),
                               rtol=1e-4, atol=1e-4)
    hidden = activations(model, digits, 0)
    x = digits.reshape(len(digits), -1) / 255.0
    expected = np.maximum(x @ np.asarray(model.params["w0"]) + np.asarray(model.params["b0"]), 0)
    np.testing.assert_allclose(hidden, expected, rtol=1e-4, atol=1e-4)


def test_cnn_blocks_are_its_pooled_feature_maps(defaults, digits):
    model = defaults["cnn"]
    spec = model.architecture
    assert layer_names(model)[-1] == "logits (10)" and len(layer_names(model)) == spec.blocks + 1
    for block in range(spec.blocks):
        got = activations(model, digits, block)
        maps = [cnn.pool2d(cnn.feature_maps(model.params, d / 255.0, spec=spec)[block][None],
                           spec.pool) for d in digits]
        np.testing.assert_allclose(got, np.concatenate(maps).reshape(len(digits), -1),
                                   rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(activations(model, digits, spec.blocks),
                               cnn.logits(model.params, digits, spec=spec), rtol=1e-4, atol=1e-4)


def test_a_layer_that_is_not_there_is_refused(defaults, digits):
    with pytest.raises(IndexError, match="choose 0 to 1"):
        activations(defaults["ffnn-jax"], digits, 2)


@pytest.mark.parametrize("kind", ["ffnn-jax", "cnn"])
def test_a_snapshot_is_placed_on_the_final_models_axes(defaults, digits, kind):
    model = defaults[kind]
    final = flat_parameters(model.params)
    axes = pca(activations(model, digits, 0), 2)
    # the final parameters as a snapshot: exactly the model's own projection
    np.testing.assert_allclose(snapshot_points(model, final, digits, 0, axes),
                               axes.project(activations(model, digits, 0)), rtol=1e-5, atol=1e-5)
    # other parameters (every weight halved) move the points, on the same axes
    halved = snapshot_points(model, final / 2, digits, 0, axes)
    assert halved.shape == (len(digits), 2)
    assert np.abs(halved - axes.project(activations(model, digits, 0))).max() > 1e-3
    with pytest.raises(ParameterVectorError, match="does not fit"):
        snapshot_points(model, final[:-1], digits, 0, axes)
