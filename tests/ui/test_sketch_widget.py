"""ui.sketch in AppTest: a drawing or an upload comes back as RGBA, Clear clears, stages show."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import canvas_state, draw_stroke, image_bytes, mnist_digit, mnist_on_canvas, on_paper
from streamlit.testing.v1 import AppTest

from engine.data.preprocess import preprocess
from ui.sketch import canvas_key, stage_images


def sketch_app() -> None:
    """A tiny host page: the widget, its result kept in session state, and the stages."""
    import streamlit as st

    from ui.sketch import preprocess_or_explain, show_preprocessing_stages, sketch_input

    sketch = sketch_input("t")
    st.session_state["returned"] = None if sketch is None else sketch.rgba.copy()
    preprocessed = preprocess_or_explain(sketch)
    if preprocessed is not None:
        show_preprocessing_stages(preprocessed)


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_function(sketch_app, default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def returned(at: AppTest) -> np.ndarray | None:
    return at.session_state["returned"]


def image_captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]


DIGIT = mnist_on_canvas(mnist_digit(8), top=30, left=90, size=120)


def test_before_drawing_it_returns_none_and_says_what_to_do(app) -> None:
    assert returned(app) is None
    assert "Draw a digit" in app.info[0].value
    assert image_captions(app) == []


def test_a_drawing_comes_back_as_rgba_and_its_stages_are_shown(app) -> None:
    app.session_state[canvas_key("t")] = canvas_state(DIGIT)
    app.run()
    assert not app.exception
    assert np.array_equal(returned(app), DIGIT)
    captions = image_captions(app)
    assert len(captions) == 6 and captions[-1].endswith("what the models see")
    assert not app.warning and not app.info


def test_clear_empties_the_canvas_and_a_new_drawing_still_arrives(app) -> None:
    app.session_state[canvas_key("t")] = canvas_state(DIGIT)
    app.run()
    app.button(key="t_clear").click().run()
    assert returned(app) is None
    assert canvas_key("t") not in app.session_state  # the old drawing is gone, not just hidden
    app.session_state[canvas_key("t", clears=1)] = canvas_state(DIGIT)
    app.run()
    assert np.array_equal(returned(app), DIGIT)


def test_a_dot_gets_a_message_not_a_traceback(app) -> None:
    app.session_state[canvas_key("t")] = canvas_state(draw_stroke([(140, 140)]))
    app.run()
    assert not app.exception
    assert "too small" in app.warning[0].value
    assert image_captions(app) == []


def test_an_upload_is_used_until_it_is_removed(app) -> None:
    app.session_state[canvas_key("t")] = canvas_state(DIGIT)
    app.run()
    paper = on_paper(DIGIT)
    app.file_uploader(key="t_upload").set_value(("eight.jpg", image_bytes(paper, "JPEG"),
                                                 "image/jpeg")).run()
    assert not app.exception
    upload = returned(app)
    assert upload.shape == (280, 280, 4)
    assert np.abs(upload[..., :3].astype(int) - paper[..., :3]).mean() < 3  # JPEG, decoded
    captions = image_captions(app)
    assert captions[0] == "your upload" and len(captions) == 7  # and the six stages
    assert "inverted" in captions[1]
    app.file_uploader(key="t_upload").set_value(None).run()
    assert np.array_equal(returned(app), DIGIT)  # back to the drawing


@pytest.mark.parametrize(("content", "message"), [
    (b"this is a text file", "not an image"),
    (image_bytes(DIGIT)[:3000], "damaged or cut short"),
], ids=["text-file", "truncated-png"])
def test_a_bad_upload_gets_an_error_not_a_traceback(app, content, message) -> None:
    app.file_uploader(key="t_upload").set_value(("digit.png", content, "image/png")).run()
    assert not app.exception
    assert returned(app) is None
    assert message in app.error[0].value and "digit.png" in app.error[0].value


@pytest.mark.parametrize(("source", "picture", "advice"), [
    ("upload", np.full((200, 300, 3), 255, np.uint8), "picture"),
    ("canvas", np.full((280, 280, 4), 255, np.uint8), "press Clear"),
], ids=["blank-white-upload", "all-white-canvas"])
def test_messages_fit_where_the_picture_came_from(app, source, picture, advice) -> None:
    """Issue 18, item 14: a blank white upload was told to "press Clear" (a canvas's advice)."""
    if source == "upload":
        app.file_uploader(key="t_upload").set_value(("white.png", image_bytes(picture),
                                                     "image/png")).run()
    else:
        app.session_state[canvas_key("t")] = canvas_state(picture)
        app.run()
    assert not app.exception
    messages = [m.value for m in (*app.warning, *app.info)]
    assert len(messages) == 1 and advice in messages[0], messages
    assert source == "canvas" or "Clear" not in messages[0]


def test_the_canvas_says_what_its_toolbar_edit_button_does(app) -> None:
    """Issue 18, item 15: Edit stops drawing until it is clicked again; the widget says so."""
    assert any("Edit" in c.value and "draw" in c.value for c in app.caption)


def test_a_shaded_photo_shows_its_lighting_stage_and_even_strokes() -> None:
    paper = on_paper(DIGIT).astype(np.float32)
    paper[..., :3] *= np.linspace(1.0, 0.45, 280)[None, :, None]  # lit from the left
    images = stage_images(preprocess(paper.round().astype(np.uint8)))
    assert len(images) == 7 and "lighting" in images[0][0]
    assert "strokes" in images[4][0]


def test_stage_images_are_rgb_with_captions() -> None:
    images = stage_images(preprocess(DIGIT))
    assert len(images) == 6
    for caption, image in images:
        assert caption and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    ink, final = images[0][1], images[-1][1]
    assert ink.shape == (280, 280, 3)
    assert final.shape == (140, 140, 3)  # 28 px enlarged 5x with crisp 5x5 blocks
    assert np.array_equal(final[::5, ::5, 0], (preprocess(DIGIT).final * 255).round())
    assert (ink == [255, 64, 64]).all(axis=-1).any()  # the bounding box is marked
