"""Adversarial attacks on the real default models: PGD fools the CNN, FGSM at epsilon 0 changes
nothing, every attack stays in the epsilon ball and [0, 1], FGSM is one signed-gradient step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.mnist import as_float, embedded_split
from engine.explain import adversarial as adv


@pytest.fixture(scope="module")
def digits():
    split = embedded_split()
    return as_float(split.x_test[::10]), split.y_test[::10]  # 100 test digits, 10 per class


@pytest.mark.slow
def test_pgd_at_0_3_changes_the_cnns_answer_on_at_least_90_of_100_test_digits(defaults, digits):
    cnn = defaults["cnn"]
    images, _ = digits
    before = adv.answers(cnn, images)
    after = adv.answers(cnn, adv.attack(cnn, images, before, 0.3))
    assert (after != before).sum() >= 90


def test_fgsm_at_epsilon_0_changes_nothing(defaults, digits):
    images, labels = digits
    for model in defaults.values():
        np.testing.assert_array_equal(adv.attack(model, images, labels, 0.0, method="fgsm"),
                                      images)


@settings(max_examples=6, deadline=None)
@given(epsilon=st.floats(0.0, 1.0), method=st.sampled_from(list(adv.ATTACKS)),
       target=st.one_of(st.none(), st.integers(0, 9)), name=st.sampled_from(["ffnn-jax", "cnn"]))
def test_attacks_stay_in_the_epsilon_ball_and_the_pixel_range(defaults, digits, epsilon, method,
                                                             target, name):
    images, labels = digits[0][:8], digits[1][:8]
    attacked = adv.attack(defaults[name], images, labels, epsilon, method=method, target=target,
                          steps=5)
    assert attacked.shape == images.shape
    assert np.all(np.abs(attacked - images) <= epsilon + 1e-6)
    assert attacked.min() >= 0.0 and attacked.max() <= 1.0


def test_fgsm_is_one_signed_step_up_the_cross_entropy(defaults, digits):
    """Reference: the gradient of optax-style cross-entropy written out here by hand."""
    model = defaults["ffnn-jax"]
    images, labels = jnp.asarray(digits[0][:4]), digits[1][:4]

    def loss(x):
        logits = model.family.logits(model.params, x, model.architecture)
        return -(jax.nn.log_softmax(logits)[jnp.arange(4), labels]).sum()

    expected = np.clip(images + 0.1 * np.sign(jax.grad(loss)(images)), 0, 1)
    np.testing.assert_allclose(adv.attack(model, images, labels, 0.1, method="fgsm"), expected)


@pytest.mark.parametrize("target", [None, 3])
def test_pgd_is_signed_steps_each_projected_into_the_ball(defaults, digits, target):
    """Reference: Madry et al.'s loop written out: 20 steps of 2.5 epsilon / 20 along the sign
    of the cross-entropy's gradient (up on the model's answers, down on a target), each step
    clipped back into the epsilon ball and then into [0, 1]."""
    model, epsilon, steps = defaults["ffnn-jax"], 0.1, 20
    images, labels = jnp.asarray(digits[0][:8]), digits[1][:8]
    goal, direction = (labels, 1.0) if target is None else (np.full(8, target), -1.0)

    def loss(x):
        logits = model.family.logits(model.params, x, model.architecture)
        return -(jax.nn.log_softmax(logits)[jnp.arange(8), goal]).sum()

    x = images
    for _ in range(steps):
        x = x + direction * 2.5 * epsilon / steps * jnp.sign(jax.grad(loss)(x))
        x = jnp.clip(jnp.minimum(jnp.maximum(x, images - epsilon), images + epsilon), 0.0, 1.0)
    attacked = adv.attack(model, images, labels, epsilon, method="pgd", target=target,
                          steps=steps)
    np.testing.assert_allclose(attacked, x, atol=1e-6)


def test_a_targeted_pgd_reaches_its_target(defaults, digits):
    images = digits[0][:5]
    attacked = adv.attack(defaults["cnn"], images, None, 0.4, target=3)
    assert (adv.answers(defaults["cnn"], attacked) == 3).sum() >= 4


def test_the_smallest_epsilon_is_on_the_edge_of_success(defaults, digits):
    model, image = defaults["ffnn-jax"], digits[0][0]
    found = adv.smallest_epsilon(model, image, upper=0.5, rounds=6)
    assert found.epsilon is not None and 0 < found.epsilon <= 0.5
    label = adv.answers(model, image[None])
    fooled = adv.attack(model, image[None], label, found.epsilon)
    assert adv.answers(model, fooled)[0] == found.answer != label[0]
    step = found.upper / 2 ** 6
    held = adv.attack(model, image[None], label, found.epsilon - step)
    assert adv.answers(model, held)[0] == label[0]


def test_an_attack_too_weak_to_work_says_so(defaults, digits):
    found = adv.smallest_epsilon(defaults["cnn"], digits[0][0], upper=0.001, rounds=2)
    assert found.epsilon is None and found.answer is None


@pytest.mark.parametrize("kwargs, words", [
    ({"epsilon": -0.1}, "between 0 and 1"), ({"epsilon": 2.0}, "between 0 and 1"),
    ({"epsilon": 0.1, "method": "deepfool"}, "unknown attack"),
    ({"epsilon": 0.1, "target": 12}, "digit from 0 to 9")])
def test_bad_settings_say_what_is_wrong(defaults, digits, kwargs, words):
    with pytest.raises(adv.AttackError, match=words):
        adv.attack(defaults["cnn"], digits[0][:1], digits[1][:1], **kwargs)
