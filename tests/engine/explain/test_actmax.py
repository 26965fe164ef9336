"""Activation maximisation: each unit's score rises, a fixed seed repeats, units see their field."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from engine import ffnn
from engine.explain.actmax import (
    DENSE_SETTINGS,
    Settings,
    receptive_field,
    what_units_want,
)
from engine.models.model import Model

FEW_STEPS = Settings(steps=24)  # enough to climb; a test stays quick


@pytest.mark.parametrize("block", [0, 1, None])
def test_every_unit_climbs_from_the_start_image(defaults, block):
    images, starts, ends = what_units_want(defaults["cnn"], block, FEW_STEPS)
    n = 10 if block is None else defaults["cnn"].architecture.filters[block]
    assert images.shape == (n, 28, 28) and starts.shape == ends.shape == (n,)
    assert images.min() >= 0 and images.max() <= 1
    assert (ends > starts).all(), (starts, ends)
    # the reported scores are the units' own scores of those images
    index = n - 1
    model = defaults["cnn"]
    again = model.family.unit_score(model.params, jnp.asarray(images[index]), index,
                                    model.architecture, block)
    assert float(again) == pytest.approx(ends[index], rel=1e-4, abs=1e-5)


def test_a_fixed_seed_repeats_and_another_differs(defaults):
    first = what_units_want(defaults["cnn"], None, FEW_STEPS)[0]
    np.testing.assert_array_equal(first, what_units_want(defaults["cnn"], None, FEW_STEPS)[0])
    other = what_units_want(defaults["cnn"], None, Settings(steps=24, seed=1))[0]
    assert np.abs(first - other).max() > 0.01


@pytest.mark.parametrize("block", [0, 1])
def test_a_unit_sees_only_its_receptive_field(defaults, block):
    model = defaults["cnn"]
    image = jax.random.uniform(jax.random.PRNGKey(3), (28, 28))
    slope = np.asarray(jax.grad(model.family.unit_score, argnums=1)(
        model.params, image, 0, model.architecture, block))
    rows, cols = np.nonzero(slope)
    side = receptive_field(model.architecture, block)
    assert side == (3, 8)[block]
    assert rows.max() - rows.min() < side and cols.max() - cols.min() < side
    if block == 0:  # one conv: the whole kernel touches the image
        assert rows.max() - rows.min() == cols.max() - cols.min() == side - 1


def test_a_block_or_layer_that_is_not_there_is_refused(defaults):
    with pytest.raises(IndexError, match="this CNN has 2"):
        what_units_want(defaults["cnn"], 2)
    with pytest.raises(IndexError, match="no group 2 of hidden units: this feed-forward net has 1"):
        what_units_want(defaults["ffnn-jax"], 1)


@pytest.fixture(scope="module")
def deep_ffnn():
    """A 784-32-16-10 tanh net with fresh weights: a second hidden layer to look into."""
    arch = ffnn.Architecture((32, 16), "tanh")
    return Model(ffnn.FAMILY, arch, ffnn.init_params(jax.random.PRNGKey(1), arch), {})


def test_a_dense_units_score_is_its_z_in_the_engines_forward_pass(deep_ffnn):
    image = jax.random.uniform(jax.random.PRNGKey(2), (28, 28))
    params, arch = deep_ffnn.params, deep_ffnn.architecture
    x = np.asarray(image).reshape(-1)
    z2 = np.tanh(x @ params["w0"] + params["b0"]) @ params["w1"] + params["b1"]  # by numpy
    assert float(ffnn.FAMILY.unit_score(params, image, 5, arch, 1)) == pytest.approx(
        z2[5], rel=1e-5)
    logits = np.asarray(ffnn.logits(params, image[None], arch=arch))[0]
    assert float(ffnn.FAMILY.unit_score(params, image, 3, arch, None)) == pytest.approx(
        logits[3], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("block", [1, None])
def test_every_ffnn_unit_climbs_from_the_start_image(deep_ffnn, block):
    few = replace(DENSE_SETTINGS, steps=24)
    images, starts, ends = what_units_want(deep_ffnn, block, few, first=12)
    n = 12 if block == 1 else 10
    assert images.shape == (n, 28, 28) and starts.shape == ends.shape == (n,)
    assert (ends > starts).all(), (starts, ends)
    np.testing.assert_array_equal(images, what_units_want(deep_ffnn, block, few,
                                                          first=12)[0])  # fixed seed
