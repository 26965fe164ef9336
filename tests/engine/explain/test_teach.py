"""Teaching a model one drawing: the step is the training loop's, checked against optax; the
model taught is never changed; what changed is counted right."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from engine import cnn, ffnn
from engine.explain import teach
from engine.models.model import Model

SMALL_FFNN = ffnn.Architecture(hidden=(16,))
SMALL_CNN = cnn.CNNSpec(filters=(4,), dropout=0.5)  # dropout: the teach step must not drop


def small_model(kind: str, optimizer: str = "adam", learning_rate: float = 0.01) -> Model:
    key = jax.random.key(1)
    training = {"loss": "cross_entropy", "optimizer": optimizer, "learning_rate": learning_rate}
    if kind == "ffnn":
        return Model(ffnn.FAMILY, SMALL_FFNN, ffnn.init_params(key, SMALL_FFNN),
                     {"training": training})
    return Model(cnn.FAMILY, SMALL_CNN, cnn.init_params(key, SMALL_CNN), {"training": training})


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (28, 28)).astype(np.float32)


def optax_steps(model: Model, x: np.ndarray, label: int, steps: int,
                transform: optax.GradientTransformation):
    """The reference: `steps` optax updates on the cross-entropy of jax.grad of the family's
    inference logits, on a batch of one."""
    def loss(params):
        logits = (ffnn.logits(params, x[None], arch=model.architecture) if model.kind == "ffnn"
                  else cnn.logits(params, x[None], spec=model.architecture))
        return optax.softmax_cross_entropy_with_integer_labels(logits, np.array([label])).mean()

    params, state = model.params, transform.init(model.params)
    for _ in range(steps):
        updates, state = transform.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    return params


@pytest.mark.slow  # each optimizer compiles a training chunk (~10 s on a shared CPU)
@pytest.mark.parametrize(("kind", "optimizer", "transform", "steps"), [
    ("ffnn", "adam", optax.adam(0.01), 3), ("cnn", "adam", optax.adam(0.01), 2),
    ("ffnn", "momentum", optax.sgd(0.01, momentum=0.9), 2)])
def test_the_teach_step_is_a_training_step_as_optax_takes_it(kind, optimizer, transform, steps):
    model = small_model(kind, optimizer)
    lesson = teach.teach(model, image(), 7, steps=steps)
    expected = optax_steps(model, image(), 7, steps, transform)
    for name, value in expected.items():
        np.testing.assert_allclose(np.asarray(lesson.model.params[name]), np.asarray(value),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    assert lesson.losses.shape == (steps,)


def test_teaching_lowers_the_loss_and_raises_the_label():
    model = small_model("ffnn")
    lesson = teach.teach(model, image(), 3, steps=5)
    assert lesson.losses[-1] < lesson.losses[0]
    before, after = (m.predict_proba(image()[None])[0, 3] for m in (model, lesson.model))
    assert after > before


def test_the_taught_model_is_a_copy_and_the_original_is_untouched():
    model = small_model("cnn")
    kept = {name: np.array(value) for name, value in model.params.items()}
    lesson = teach.teach(model, image(), 2, steps=2, learning_rate=0.05)
    assert lesson.model is not model and lesson.model.metadata["taught"] == {"label": 2,
                                                                             "steps": 2}
    assert all(np.array_equal(np.asarray(model.params[n]), kept[n]) for n in kept)
    assert not np.array_equal(np.asarray(lesson.model.params["conv0_w"]), kept["conv0_w"])


def test_a_model_file_without_training_settings_is_taught_with_adam():
    model = Model(ffnn.FAMILY, SMALL_FFNN, small_model("ffnn").params, {})
    assert teach.training_settings(model) == ("cross_entropy", "adam", 1e-3)
    assert teach.teach_rule(model, 0.5).learning_rate == 0.5


@pytest.mark.parametrize(("args", "message"), [
    ((np.zeros((28, 27)), 1, 1, None), "28x28"), ((image(), 10, 1, None), "digit"),
    ((image(), -1, 1, None), "digit"), ((image(), 1, 0, None), "steps"),
    ((image(), 1, 11, None), "steps"), ((image(), 1, 1, 0.0), "learning rate")])
def test_impossible_requests_are_refused_with_a_reason(args, message):
    x, label, steps, rate = args
    with pytest.raises(teach.TeachError, match=message):
        teach.teach(small_model("ffnn"), x, label, steps=steps, learning_rate=rate)


def test_first_layer_change_ranks_units_by_how_far_they_moved():
    before = small_model("ffnn")
    params = {name: np.array(value) for name, value in before.params.items()}
    params["w0"][:, 5] += 0.1  # unit 5 moves furthest
    params["w0"][:10, 2] -= 0.3  # unit 2: larger single changes, but fewer of them
    after = Model(ffnn.FAMILY, SMALL_FFNN, params, {})
    change = teach.first_layer_change(before, after, top=3)
    assert list(change.units[:2]) == [5, 2]
    assert change.change.shape == (3, 28, 28)
    np.testing.assert_allclose(change.size[:2], [0.1, 0.3], rtol=1e-5)
    filters = teach.first_layer_change(small_model("cnn"), small_model("cnn"))
    assert filters.change.shape == (4, 3, 3) and not filters.change.any()


def test_answer_changes_sorts_test_digits_into_helped_hurt_and_switched():
    before = small_model("ffnn")
    params = {name: np.array(value) for name, value in before.params.items()}
    params["b1"] = params["b1"] + np.eye(10, dtype=np.float32)[4] * 100  # now always "4"
    after = Model(ffnn.FAMILY, SMALL_FFNN, params, {})
    x = (np.random.default_rng(0).uniform(0, 1, (40, 28, 28)) * 255).astype(np.uint8)
    old = before.predict_proba(x / 255.0).argmax(axis=1)
    y = np.where(np.arange(40) % 2 == 0, old, 4)  # even: right before; odd: a 4
    changes = teach.answer_changes(before, after, x, y)
    assert np.array_equal(changes.after, np.full(40, 4))
    assert set(changes.helped) == {i for i in range(1, 40, 2) if old[i] != 4}
    assert set(changes.hurt) == {i for i in range(0, 40, 2) if old[i] != 4}
    assert set(changes.switched) == set()
    same = teach.answer_changes(before, before, x, y)
    assert not (len(same.helped) or len(same.hurt) or len(same.switched))
