"""The break-it lab: each bug caught by the twin-engine check where it lives, and only there; no
bug, no alarm; the real engine untouched afterwards."""

import jax
import numpy as np
import pytest
from reference import assert_matches_jax

from engine.autodiff import Tensor
from engine.data.mnist import as_float, embedded_split
from engine.ffnn import Architecture, init_params
from engine.ffnn.model import TWIN_TOLERANCE
from engine.playground import broken

WEIGHTS = {"w0", "w1", "w2"}
BIASES = {"b0", "b1", "b2"}
SIGNALS = set(broken.signal_names(broken.ARCH))
# Where each bug's gradients leave jax.grad's (everything else must agree).
EXPECTED_WRONG = {
    broken.NO_BUG: set(),
    "assign": WEIGHTS,
    "not_reset": WEIGHTS | BIASES,
    "softmax_sign": WEIGHTS | BIASES | SIGNALS,
    "relu_mask": {"layer 2, before relu", "w1", "b1", "layer 1, after relu",
                  "layer 1, before relu", "w0", "b0"},
    "bias_mean": BIASES,
    "transposed": WEIGHTS,
}


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    split = embedded_split()
    return split.x_train[:256], split.y_train[:256]


def test_every_bug_has_an_expectation() -> None:
    assert set(EXPECTED_WRONG) == set(broken.BUGS)


@pytest.mark.parametrize("bug", list(broken.BUGS))
def test_the_twin_check_finds_each_bug_where_it_lives(bug: str, digits) -> None:
    lab = broken.run_lab(bug, *digits, steps=4)
    wrong = {check.name for check in lab.check if not check.ok}
    assert wrong == EXPECTED_WRONG[bug]
    assert [c.name for c in lab.check] == [name for name, _ in broken.check_order(broken.ARCH)]
    assert len(lab.healthy_losses) == 4 and np.isfinite(lab.healthy_losses).all()


def test_no_bug_is_our_real_engine_and_trains(digits) -> None:
    lab = broken.run_lab(broken.NO_BUG, *digits, steps=30)
    np.testing.assert_array_equal(lab.losses, lab.healthy_losses)
    assert lab.losses[-5:].mean() < lab.losses[0] - 0.5
    assert max(check.max_rel for check in lab.check) < TWIN_TOLERANCE


def test_a_flipped_softmax_gradient_climbs_the_loss(digits) -> None:
    lab = broken.run_lab("softmax_sign", *digits, steps=8)
    assert lab.losses[-1] > lab.losses[0] + 1


def test_gradients_not_reset_are_right_at_the_first_step_only(digits) -> None:
    x, y = as_float(digits[0][:32]), digits[1][:32]
    params = init_params(jax.random.key(1), broken.ARCH)
    gradients = broken.our_gradients("not_reset")
    _, reference = broken.reference_gradients(params, x, np.asarray(y, np.int32))
    assert all(c.ok for c in broken.twin_check(gradients(params, x, y)[1], reference))
    assert not all(c.ok for c in broken.twin_check(gradients(params, x, y)[1], reference))


def test_the_copied_walk_without_a_bug_is_the_engine_s_backward() -> None:
    rng = np.random.default_rng(0)
    w = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    b = Tensor(rng.normal(size=4), requires_grad=True)
    x = rng.normal(size=(5, 3))
    hidden = (x @ w + b).relu()
    out = (hidden * hidden.log_softmax() + w.sum()).mean()  # w and hidden used twice
    grads = broken.broken_gradients(out, broken.NO_BUG)
    out.backward()
    for tensor in (w, b, hidden):
        np.testing.assert_allclose(grads[id(tensor)], tensor.grad, rtol=1e-12)


def test_signal_gradients_by_taps_match_central_differences() -> None:
    """The zero added at the logits is differentiated as the logits themselves would be."""
    arch = Architecture(hidden=(3,), activation="relu")
    rng = np.random.default_rng(2)
    params = {k: rng.normal(size=v.shape).astype(np.float32)
              for k, v in init_params(jax.random.key(0), arch).items()}
    x, y = rng.uniform(size=(2, 28, 28)).astype(np.float32), np.array([1, 7], np.int32)
    _, grads = broken.reference_gradients(params, x, y, arch=arch)
    eps, numeric = 1e-2, np.zeros((2, 10), np.float32)  # the logits' shape
    for i in np.ndindex(numeric.shape):
        bump = np.zeros_like(numeric)
        bump[i] = eps
        plus = broken.tapped(broken.JAX_OPS, lambda z, d=bump: z + d if z.shape == d.shape else z)
        minus = broken.tapped(broken.JAX_OPS, lambda z, d=bump: z - d if z.shape == d.shape else z)
        numeric[i] = (float(broken.lab_loss(params, x, y, arch=arch, ops=plus))
                      - float(broken.lab_loss(params, x, y, arch=arch, ops=minus))) / (2 * eps)
    np.testing.assert_allclose(grads["logits"], numeric, atol=2e-3)


def test_unknown_bug_is_refused(digits) -> None:
    with pytest.raises(ValueError, match="unknown bug"):
        broken.run_lab("typo", *digits)


def test_the_real_engine_is_unaffected_after_the_lab(digits) -> None:
    for bug in broken.BUGS:
        broken.run_lab(bug, *digits, steps=2)
    rng = np.random.default_rng(1)
    assert_matches_jax(lambda ns, a, b: a @ b, rng.normal(size=(3, 4)), rng.normal(size=(4, 2)))
    assert_matches_jax(lambda ns, a: ns.log_softmax(a), rng.normal(size=(2, 3, 4)))
    x, b = rng.normal(size=(3, 4)), rng.normal(size=2)
    assert_matches_jax(lambda ns, w: ns.tanh(x @ w + b) * x[:, :2] - 1.5 / (2 + w[0]),
                       rng.normal(size=(4, 2)))
    assert_matches_jax(lambda ns, a, b: ns.relu(a) + b,
                       np.linspace(-2, 2, 12).reshape(3, 4), np.ones(4))
    assert_matches_jax(lambda ns, a: (a * a).sum(), np.arange(3.0))
