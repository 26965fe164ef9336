"""The feed-forward net: one definition, two differentiators that agree, and its helpers."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ffnn
from engine.app.assets import default_model_path
from engine.app.settings import Limits
from engine.data.mnist import as_float, embedded_split

KEY = jax.random.key(1)
ARCHS = [ffnn.Architecture((24,), "relu"), ffnn.Architecture((16, 12), "tanh", "xavier"),
         ffnn.Architecture((), "sigmoid"), ffnn.Architecture((20,), "sigmoid", "xavier")]


@pytest.fixture(scope="module")
def batch():
    split = embedded_split()
    idx = np.arange(0, len(split.x_train), 370)  # one digit of each class
    return as_float(split.x_train[idx]), split.y_train[idx]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.describe())
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse"])
def test_both_backends_give_the_same_gradients(arch, loss_name, batch):
    x, y = batch
    params = ffnn.init_params(jax.random.key(3), arch)
    loss_ours, ours = ffnn.gradients(params, x, y, arch=arch, loss_name=loss_name,
                                     backend="autodiff")
    loss_jax, theirs = ffnn.gradients(params, x, y, arch=arch, loss_name=loss_name,
                                      backend="jax")
    assert loss_ours == pytest.approx(loss_jax, rel=1e-5)
    assert set(ours) == set(theirs) == set(params)
    for name in params:
        assert ours[name].shape == params[name].shape
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-5)
    assert max(np.abs(g).max() for g in theirs.values()) > 1e-3  # a real signal, not all zeros


def test_gradients_agree_to_float64_precision(batch):
    x, y = batch
    arch = ffnn.Architecture((16, 8), "tanh")
    params = {k: v.astype(np.float64) for k, v in ffnn.init_params(KEY, arch).items()}
    with jax.enable_x64(True):
        _, theirs = ffnn.gradients(params, x.astype(np.float64), y, arch=arch,
                                   loss_name="cross_entropy", backend="jax")
    _, ours = ffnn.gradients(params, x.astype(np.float64), y, arch=arch, loss_name="cross_entropy",
                             backend="autodiff")
    for name in params:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-10, atol=1e-12)


def test_twin_check_reports_tiny_differences_per_layer(batch):
    arch = ffnn.Architecture((16, 8))
    diffs = ffnn.gradient_differences(ffnn.init_params(KEY, arch), *batch, arch=arch,
                                      loss_name="cross_entropy")
    assert [d.layer for d in diffs] == ["layer 1", "layer 2", "layer 3"]
    assert all(0 <= d.max_abs < 1e-5 and 0 <= d.max_rel < 1e-4 for d in diffs)


def test_parameter_shapes_and_initialisation_scales():
    arch = ffnn.Architecture((300, 100))
    params = ffnn.init_params(jax.random.key(0), arch)
    assert {k: v.shape for k, v in params.items()} == arch.param_shapes() == {
        "w0": (784, 300), "b0": (300,), "w1": (300, 100), "b1": (100,), "w2": (100, 10),
        "b2": (10,)}
    assert all(v.dtype == np.float32 for v in params.values())
    assert params["w0"].std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)  # He
    xavier = ffnn.init_params(KEY, ffnn.Architecture((300,), "tanh", "xavier"))
    assert np.abs(xavier["w0"]).max() <= np.sqrt(6 / (784 + 300))
    assert not params["b0"].any()
    again, other = (ffnn.init_params(jax.random.key(k), arch)["w1"] for k in (0, 1))
    np.testing.assert_array_equal(again, params["w1"])  # the key decides
    assert not np.array_equal(other, params["w1"])


def test_forward_has_a_hand_checkable_value():
    """One hidden ReLU unit reading pixel 0, one output: logits are relu(x0 - 0.5) * 2 + 1."""
    arch = ffnn.Architecture((1,))
    params = {"w0": np.zeros((784, 1), np.float32), "b0": np.array([-0.5], np.float32),
              "w1": np.full((1, 10), 2.0, np.float32), "b1": np.ones(10, np.float32)}
    params["w0"][0, 0] = 1.0
    x = np.zeros((2, 28, 28), np.float32)
    x[0, 0, 0] = 0.75
    logits = np.asarray(ffnn.forward(params, x, arch=arch))
    assert logits.shape == (2, 10)
    np.testing.assert_allclose(logits[:, 0], [1.5, 1.0])
    np.testing.assert_allclose(ffnn.logits(params, x, arch=arch), logits)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_probabilities_sum_to_one_and_match_the_labels(seed):
    arch = ffnn.Architecture((8,))
    params = ffnn.init_params(jax.random.key(seed), arch)
    images = np.random.default_rng(seed).random((3, 28, 28), np.float32)
    probs = ffnn.predict_proba(params, images, arch=arch)
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1), ffnn.predict_labels(params, images, arch=arch))
    np.testing.assert_array_equal(probs.argmax(1),
                                  ffnn.autodiff_predict_labels(params, images, arch=arch))


def test_uint8_pixels_mean_the_same_as_their_float_version():
    arch = ffnn.Architecture((8,))
    params = ffnn.init_params(KEY, arch)
    pixels = embedded_split().x_test[:4]
    np.testing.assert_allclose(ffnn.predict_proba(params, pixels, arch=arch),
                               ffnn.predict_proba(params, pixels / np.float32(255), arch=arch),
                               rtol=1e-6)
    np.testing.assert_array_equal(ffnn.autodiff_predict_labels(params, pixels, arch=arch),
                                  ffnn.predict_labels(params, pixels, arch=arch))


def test_an_untrained_models_loss_is_a_uniform_guess():
    assert ffnn.uniform_guess_loss("cross_entropy") == pytest.approx(np.log(10), rel=1e-6)
    assert ffnn.uniform_guess_loss("mse") == pytest.approx(0.9 ** 2 + 9 * 0.1 ** 2, rel=1e-6)


def test_first_layer_images_are_the_hidden_units_incoming_weights():
    params = ffnn.init_params(KEY, ffnn.Architecture((100,)))
    images = ffnn.first_layer_images(params, limit=64)
    assert images.shape == (64, 28, 28)
    np.testing.assert_array_equal(images[5].ravel(), params["w0"][:, 5])


@pytest.mark.parametrize(("text", "widths"), [("256", (256,)), ("256, 128", (256, 128)),
                                              ("", ()), ("64;32", (64, 32))])
def test_parse_hidden(text, widths):
    assert ffnn.parse_hidden(text) == widths


@pytest.mark.parametrize("text", ["abc", "12,x", "0", "-4", "1.5", "256,,128", "256,", ",64"])
def test_parse_hidden_refuses_nonsense(text):
    with pytest.raises(ValueError, match="hidden layer"):
        ffnn.parse_hidden(text)


def test_limit_problems_name_each_excess():
    limits = Limits(max_hidden_units=100, max_hidden_layers=2, max_epochs=5, max_batch_size=64)
    ok = ffnn.TrainingConfig(ffnn.Architecture((100, 50)), epochs=5, batch_size=64)
    assert ffnn.limit_problems(ok, limits) == []
    bad = ffnn.TrainingConfig(ffnn.Architecture((101, 5, 5)), epochs=6, batch_size=65)
    problems = ffnn.limit_problems(bad, limits)
    assert len(problems) == 4
    assert any("101 units" in p for p in problems) and any("6 epochs" in p for p in problems)


@pytest.mark.parametrize("change", [dict(optimizer="adagrad"), dict(loss="hinge"),
                                    dict(backend="torch"), dict(learning_rate=-1.0),
                                    dict(learning_rate=float("nan")),
                                    dict(arch=ffnn.Architecture((8,), "swish"))])
def test_unknown_choices_are_refused(change):
    with pytest.raises(ValueError):
        ffnn.check_config(ffnn.TrainingConfig(**change))


def test_step_flops_count_six_per_weight_per_example():
    config = ffnn.TrainingConfig(ffnn.Architecture((3,)), batch_size=2)
    assert ffnn.step_flops(config) == 6 * (784 * 3 + 3 * 10) * 2


def test_hidden_widths_round_trip_through_their_text():
    for widths in [(256,), (256, 128), ()]:
        assert ffnn.parse_hidden(ffnn.format_hidden(widths)) == widths
    assert ffnn.format_hidden(ffnn.TrainingConfig().arch.hidden) == "256"


def test_architecture_round_trips_through_metadata():
    arch = ffnn.Architecture((32, 16), "tanh", "xavier")
    assert ffnn.Architecture.from_metadata(arch.to_metadata()) == arch
    normalised = ffnn.Architecture((32, 16), "sigmoid", "tiny", batch_norm=True)
    assert ffnn.Architecture.from_metadata(normalised.to_metadata()) == normalised
    assert not ffnn.Architecture().batch_norm
    with pytest.raises(ValueError):
        ffnn.Architecture.from_metadata({"hidden": ["x"], "activation": "relu"})


@pytest.mark.parametrize("name", ["ffnn-autodiff", "ffnn-jax"])
def test_default_models_score_at_least_93_percent_on_the_fixed_test_split(name):
    arch, params, meta = ffnn.read_checkpoint(default_model_path(name).read_bytes())
    split = embedded_split()
    accuracy = np.mean(ffnn.predict_labels(params, as_float(split.x_test), arch=arch)
                       == split.y_test)
    assert len(split.y_test) == 1000
    assert accuracy >= 0.93
    assert meta["metrics"]["test_accuracy"] == pytest.approx(accuracy, abs=1e-3)
    assert meta["training"]["backend"] == name.removeprefix("ffnn-")
