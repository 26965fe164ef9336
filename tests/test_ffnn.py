"""The feed-forward net: one definition, two differentiators that agree, and its helpers."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ffnn
from engine.data import as_float, embedded_split
from engine.pretrain import default_model_path
from engine.settings import Limits

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
    params = ffnn.init_params(arch, seed=3)
    loss_ours, ours = ffnn.gradients("autodiff", arch, loss_name, params, x, y)
    loss_jax, theirs = ffnn.gradients("jax", arch, loss_name, params, x, y)
    assert loss_ours == pytest.approx(loss_jax, rel=1e-5)
    assert set(ours) == set(theirs) == set(params)
    for name in params:
        assert ours[name].shape == params[name].shape
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-5)
    assert max(np.abs(g).max() for g in theirs.values()) > 1e-3  # a real signal, not all zeros


def test_gradients_agree_to_float64_precision(batch):
    x, y = batch
    arch = ffnn.Architecture((16, 8), "tanh")
    params = {k: v.astype(np.float64) for k, v in ffnn.init_params(arch, 1).items()}
    with jax.enable_x64(True):
        _, theirs = ffnn.gradients("jax", arch, "cross_entropy", params, x.astype(np.float64), y)
    _, ours = ffnn.gradients("autodiff", arch, "cross_entropy", params, x.astype(np.float64), y)
    for name in params:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-10, atol=1e-12)


def test_twin_check_reports_tiny_differences_per_layer(batch):
    arch = ffnn.Architecture((16, 8))
    diffs = ffnn.gradient_differences(arch, "cross_entropy", ffnn.init_params(arch), *batch)
    assert [d.layer for d in diffs] == ["layer 1", "layer 2", "layer 3"]
    assert all(0 <= d.max_abs < 1e-5 and 0 <= d.max_rel < 1e-4 for d in diffs)


def test_parameter_shapes_and_initialisation_scales():
    arch = ffnn.Architecture((300, 100))
    params = ffnn.init_params(arch, seed=0)
    assert {k: v.shape for k, v in params.items()} == arch.param_shapes() == {
        "w0": (784, 300), "b0": (300,), "w1": (300, 100), "b1": (100,), "w2": (100, 10),
        "b2": (10,)}
    assert all(v.dtype == np.float32 for v in params.values())
    assert params["w0"].std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)  # He
    xavier = ffnn.init_params(ffnn.Architecture((300,), "tanh", "xavier"))
    assert np.abs(xavier["w0"]).max() <= np.sqrt(6 / (784 + 300))
    assert not params["b0"].any()
    np.testing.assert_array_equal(ffnn.init_params(arch, 0)["w1"], params["w1"])  # seeded


def test_forward_has_a_hand_checkable_value():
    """One hidden ReLU unit reading pixel 0, one output: logits are relu(x0 - 0.5) * 2 + 1."""
    arch = ffnn.Architecture((1,))
    params = {"w0": np.zeros((784, 1), np.float32), "b0": np.array([-0.5], np.float32),
              "w1": np.full((1, 10), 2.0, np.float32), "b1": np.ones(10, np.float32)}
    params["w0"][0, 0] = 1.0
    x = np.zeros((2, 28, 28), np.float32)
    x[0, 0, 0] = 0.75
    logits = np.asarray(ffnn.forward(ffnn.JAX_OPS, arch, params, x))
    assert logits.shape == (2, 10)
    np.testing.assert_allclose(logits[:, 0], [1.5, 1.0])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_probabilities_sum_to_one_and_match_the_labels(seed):
    arch = ffnn.Architecture((8,))
    params = ffnn.init_params(arch, seed)
    images = np.random.default_rng(seed).random((3, 28, 28), np.float32)
    probs = ffnn.predict_proba(arch, params, images)
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1), ffnn.predict_labels(arch, params, images))
    np.testing.assert_array_equal(probs.argmax(1),
                                  ffnn.autodiff_predict_labels(arch, params, images))


def test_first_layer_images_are_the_hidden_units_incoming_weights():
    params = ffnn.init_params(ffnn.Architecture((100,)))
    images = ffnn.first_layer_images(params, limit=64)
    assert images.shape == (64, 28, 28)
    np.testing.assert_array_equal(images[5].ravel(), params["w0"][:, 5])


@pytest.mark.parametrize(("text", "widths"), [("256", (256,)), ("256, 128", (256, 128)),
                                              ("", ()), ("64;32", (64, 32))])
def test_parse_hidden(text, widths):
    assert ffnn.parse_hidden(text) == widths


@pytest.mark.parametrize("text", ["abc", "12,x", "0", "-4", "1.5"])
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


@pytest.mark.parametrize("change", [dict(optimizer="rmsprop"), dict(loss="hinge"),
                                    dict(backend="torch"), dict(learning_rate=-1.0),
                                    dict(learning_rate=float("nan")),
                                    dict(arch=ffnn.Architecture((8,), "gelu"))])
def test_unknown_choices_are_refused(change):
    with pytest.raises(ValueError):
        ffnn.check_config(ffnn.TrainingConfig(**change))


def test_chunks_stay_short_for_big_nets_and_long_for_small_ones():
    big = ffnn.TrainingConfig(ffnn.Architecture((1024,) * 4), batch_size=1024)
    small = ffnn.TrainingConfig(ffnn.Architecture((32,)), batch_size=32)
    assert ffnn.chunk_steps(big) == 1
    assert ffnn.chunk_steps(small) == 64


def test_architecture_round_trips_through_metadata():
    arch = ffnn.Architecture((32, 16), "tanh", "xavier")
    assert ffnn.Architecture.from_metadata(arch.to_metadata()) == arch
    with pytest.raises(ValueError):
        ffnn.Architecture.from_metadata({"hidden": ["x"], "activation": "relu"})


@pytest.mark.parametrize("name", ["ffnn-autodiff", "ffnn-jax"])
def test_default_models_score_at_least_93_percent_on_the_fixed_test_split(name):
    arch, params, meta = ffnn.read_checkpoint(default_model_path(name).read_bytes())
    split = embedded_split()
    accuracy = np.mean(ffnn.predict_labels(arch, params, as_float(split.x_test)) == split.y_test)
    assert len(split.y_test) == 1000
    assert accuracy >= 0.93
    assert meta["metrics"]["test_accuracy"] == pytest.approx(accuracy, abs=1e-3)
    assert meta["training"]["backend"] == name.removeprefix("ffnn-")
