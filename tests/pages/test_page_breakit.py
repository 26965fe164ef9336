"""The break-it lab page in AppTest: healthy by default, a mystery bug caught, a guess explained."""

from helpers import assert_calm, open_page, said

from engine.playground import broken


def test_healthy_engine_by_default() -> None:
    at = open_page("pages/breakit.py")
    assert at.selectbox(key="bk_bug").value == broken.NO_BUG
    assert any("twin check passes" in s.value for s in at.success)
    assert not at.error
    assert len(at.get("plotly_chart")) == 2


def test_a_mystery_bug_is_caught_and_named_only_after_a_guess() -> None:
    at = open_page("pages/breakit.py")
    at.selectbox(key="bk_bug").set_value("bias_mean").run()
    assert_calm(at)
    assert "b0" in said(at) and "w0" not in said(at)
    title = broken.BUGS["bias_mean"].title
    assert title not in said(at) and not at.code
    guess = at.radio(key="bk_guess_bias_mean")
    assert title in guess.options
    guess.set_value("transposed").run()
    assert any(title in e.value for e in at.error)
    assert broken.BUGS["bias_mean"].code in at.code[0].value
    at.radio(key="bk_guess_bias_mean").set_value("bias_mean").run()
    assert any("Right" in s.value for s in at.success)
