"""Model families: the registry, what every family answers, and jitted functions that take a
family as a static argument compiling once per family and architecture."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from engine import cnn, ffnn
from engine.explain import adversarial, attribution
from engine.models.family import Family
from engine.models.model import Model
from engine.models.registry import FAMILIES, UnknownFamilyError, family_named

SMALL = {  # a small architecture of each family, not used elsewhere: compile counts start at 0
    "ffnn": ffnn.Architecture((7,), "tanh"),
    "cnn": cnn.CNNSpec((3,), 3),
}


def small_model(family: Family, seed: int = 0) -> Model:
    architecture = SMALL[family.kind]
    return Model(family, architecture, family.init_params(jax.random.key(seed), architecture), {})


def test_the_registry_holds_each_family_under_the_kind_its_files_store() -> None:
    assert FAMILIES == {"ffnn": ffnn.FAMILY, "cnn": cnn.FAMILY}
    for kind, family in FAMILIES.items():
        assert family_named(kind) is family and family.kind == kind
    for stranger in ("rnn", "FFNN", None, 3):
        with pytest.raises(UnknownFamilyError):
            family_named(stranger)


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_every_family_answers_every_question_consistently(family: Family) -> None:
    model = small_model(family)
    images = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    logits = np.asarray(family.logits(model.params, images, model.architecture))
    assert logits.shape == (3, 10)
    np.testing.assert_allclose(model.predict_proba(images), jax.nn.softmax(logits), atol=1e-6)
    names = family.layer_names(model.architecture)
    assert names[-1] == "logits (10)"
    assert len(names) == len(family.unit_groups(model.architecture)) + 1
    np.testing.assert_allclose(family.activations(model.params, images, model.architecture,
                                                  len(names) - 1), logits, rtol=1e-5, atol=1e-5)
    for layer, units in enumerate(family.unit_groups(model.architecture)):
        width = family.activations(model.params, images, model.architecture, layer).shape[1]
        assert width % units == 0  # a block's maps are units x positions
    score = family.unit_score(model.params, images[0], 4, model.architecture, None)
    assert float(score) == pytest.approx(float(logits[0, 4]), rel=1e-5, abs=1e-5)
    assert family.first_layer_images(model.params).shape[0] == family.unit_groups(
        model.architecture)[0]
    assert family.plane_net(model.architecture) == family.plane_net(model.architecture)
    assert model.kind == family.kind


@pytest.mark.slow
def test_a_family_compiles_once_per_architecture() -> None:
    """Families are singletons compared by identity: a jitted function taking one as a static
    argument reuses its program for every model of that family and architecture."""
    image = np.random.default_rng(1).random((28, 28)).astype(np.float32)
    for family in FAMILIES.values():
        maps_before = attribution._all_maps._cache_size()
        attack_before = adversarial._attack._cache_size()
        for seed in range(3):  # three models: the same family and architecture, other params
            model = small_model(family, seed)
            attribution.explain(model, image, seed)
            adversarial.attack(model, image[None], np.array([seed]), 0.1, steps=2)
        assert attribution._all_maps._cache_size() == maps_before + 1
        assert adversarial._attack._cache_size() == attack_before + 1
