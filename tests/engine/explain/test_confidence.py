"""Softmax temperature against jax.nn.softmax (hypothesis); inputs no model was trained for."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.explain.confidence import faint_scribble, tempered, unfamiliar_inputs, uniform_noise

# One shape, so jax.nn.softmax compiles once; hypothesis varies the values. Logits this spread
# keep every float32 probability above zero, so the log recovers them.
LOGITS = arrays(np.float32, (5, 10), elements=st.floats(-20, 20, width=32))
TEMPERATURES = st.floats(0.25, 4.0)

reference = jax.jit(lambda logits, t: jax.nn.softmax(logits / t))


@settings(max_examples=40, deadline=None)
@given(logits=LOGITS, temperature=TEMPERATURES)
def test_tempered_logits_and_probabilities_match_jax(logits, temperature) -> None:
    expected = np.asarray(reference(logits, np.float32(temperature)))
    probabilities = np.asarray(jax.nn.softmax(logits))
    np.testing.assert_allclose(tempered(logits, temperature, from_logits=True), expected,
                               atol=1e-5)
    np.testing.assert_allclose(tempered(probabilities, temperature), expected, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(logits=LOGITS, temperature=st.floats(0.01, 100.0))
def test_the_guess_never_changes(logits, temperature) -> None:
    """The model's guess (first most probable digit) is still a most probable digit."""
    probabilities = np.asarray(jax.nn.softmax(logits))
    for values, from_logits in ((logits, True), (probabilities, False)):
        out = tempered(values, temperature, from_logits=from_logits)
        guess = values.argmax(axis=1)
        assert np.array_equal(out[np.arange(len(out)), guess], out.max(axis=1))
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)


def test_temperature_one_keeps_the_probabilities_and_zeros_stay_finite() -> None:
    p = np.array([[0.7, 0.2, 0.1] + [0.0] * 7])
    np.testing.assert_allclose(tempered(p, 1.0), p, atol=1e-12)
    hot = tempered(p, 4.0)
    assert np.isfinite(hot).all() and hot[0, 0] < 0.7 and hot[0, 1] > 0.2
    assert tempered(p, 0.25)[0, 0] > 0.7
    assert tempered(p[0], 2.0).shape == (10,)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("inf"), float("nan")])
def test_a_temperature_that_is_not_positive_and_finite_is_refused(temperature) -> None:
    with pytest.raises(ValueError, match="positive"):
        tempered(np.full(10, 0.1), temperature)


def test_unfamiliar_inputs_are_28_by_28_in_the_unit_range() -> None:
    inputs = unfamiliar_inputs()
    assert len(inputs) == 3
    for name, image in inputs.items():
        assert image.shape == (28, 28) and image.dtype == np.float32, name
        assert image.min() >= 0.0 and image.max() <= 1.0, name
        assert image.max() > 0, name  # something is there
    letter = inputs["the letter A"]
    assert letter.max() == pytest.approx(1.0)  # prepared like a drawing: full ink
    assert 0.05 < (letter > 0.5).mean() < 0.4
    assert np.array_equal(uniform_noise(), uniform_noise())  # fixed seed
    assert (faint_scribble() > 0).mean() < 0.05  # blank-ish
