"""Activation maximisation: each unit's score rises, a fixed seed repeats, units see their field."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from engine.actmax import Settings, receptive_field, unit_score, what_units_want

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
    again = unit_score(defaults["cnn"].params, jnp.asarray(images[index]), index,
                       spec=defaults["cnn"].architecture, block=block)
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
    slope = np.asarray(jax.grad(unit_score, argnums=1)(model.params, image, 0,
                                                       spec=model.architecture, block=block))
    rows, cols = np.nonzero(slope)
    side = receptive_field(model.architecture, block)
    assert side == (3, 8)[block]
    assert rows.max() - rows.min() < side and cols.max() - cols.min() < side
    if block == 0:  # one conv: the whole kernel touches the image
        assert rows.max() - rows.min() == cols.max() - cols.min() == side - 1


def test_a_block_that_is_not_there_and_the_ffnn_are_refused(defaults):
    with pytest.raises(IndexError, match="this CNN has 2"):
        what_units_want(defaults["cnn"], 2)
    with pytest.raises(ValueError, match="CNN only"):
        what_units_want(defaults["ffnn-jax"], None)
