"""The Sketch lab's attack table words (ui.views.explain)."""

import pytest

from ui.views.explain import fooled


@pytest.mark.parametrize(("before", "after", "target", "said"), [
    (7, 7, None, "no"), (7, 2, None, "yes"),  # untargeted: any other answer fools it
    (7, 3, 3, "yes"), (7, 7, 3, "no"),
    (7, 2, 3, "no: it answers 2, not 3"),  # issue 27: a missed target was called "yes"
])
def test_a_targeted_attack_fools_a_model_only_when_it_answers_the_target(before, after, target,
                                                                         said):
    assert fooled(before, after, target) == said
