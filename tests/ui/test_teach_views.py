"""Teach it's words (ui.views.teach): what a lesson that hurt the test digits did."""

from ui.views.teach import hurt_more_than_helped


def test_a_lesson_that_was_not_learned_does_not_say_the_drawing_pulled_the_weights():
    """Issue 27: P(1) moved from 3.7e-9 to 9.1e-6, the answer stayed 7, yet the warning said
    the drawing had "pulled the weights toward itself"."""
    missed = hurt_more_than_helped(learned=False, label=1)
    assert "still does not read your drawing as a 1" in missed and "pulled" not in missed
    learned = hurt_more_than_helped(learned=True, label=8)
    assert "now reads your drawing as an 8" in learned and "pulled the weights" in learned
