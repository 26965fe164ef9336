"""The lessons page in AppTest: every step renders, sets the controls it says in its room, and the
position lives in the URL."""

import pytest
from helpers import assert_calm, open_page, said

from engine.app.lessons import load_lessons

LESSONS = load_lessons()
STEPS = [(lesson, index) for lesson in LESSONS for index in range(len(lesson.steps))]
TITLES = {"autodiff": "Autodiff playground", "feedforward": "Feed-forward net", "cnn": "CNN",
          "sketch": "Sketch lab", "breakit": "Break-it lab"}


def test_opens_at_the_first_step_of_the_first_lesson() -> None:
    at = open_page("pages/lessons.py")
    assert at.query_params["lesson"] == LESSONS[0].id and at.query_params["step"] == "1"
    assert any(LESSONS[0].steps[0].title in s.value for s in at.subheader)
    assert "step 1 of" in at.get("progress")[0].proto.text


def test_next_and_previous_move_and_the_url_follows() -> None:
    at = open_page("pages/lessons.py")
    at.button(key="ls_next").click().run()
    assert_calm(at)
    assert at.query_params["step"] == "2"
    assert any(LESSONS[0].steps[1].title in s.value for s in at.subheader)
    at.button(key="ls_previous").click().run()
    assert at.query_params["step"] == "1"


def test_a_reload_comes_back_to_the_step_in_the_url() -> None:
    lesson = LESSONS[3]
    at = open_page("pages/lessons.py", lesson=lesson.id, step="2")
    assert any(lesson.steps[1].title in s.value for s in at.subheader)
    assert at.selectbox[0].value == 3


def test_a_bad_lesson_in_the_url_gets_a_warning_not_a_crash() -> None:
    at = open_page("pages/lessons.py", lesson="no-such-lesson", step="zz")
    assert "no lesson called" in said(at)
    at = open_page("pages/lessons.py", lesson=LESSONS[0].id, step="99")
    assert at.query_params["step"] == str(len(LESSONS[0].steps))


def test_the_question_reveals_only_after_an_answer() -> None:
    lesson = LESSONS[1]
    index = next(i for i, s in enumerate(lesson.steps) if s.question)
    at = open_page("pages/lessons.py", lesson=lesson.id, step=str(index + 1))
    question = lesson.steps[index].question
    assert question.reveal not in said(at) + "".join(s.value for s in at.success)
    at.radio(key=f"ls_{lesson.id}_{index}_answer").set_value(question.answer).run()
    assert any(question.reveal in s.value for s in at.success)


@pytest.mark.slow
@pytest.mark.parametrize(("lesson", "index"), STEPS,
                         ids=[f"{lesson.id}-{i + 1}" for lesson, i in STEPS])
def test_every_step_renders_and_sets_its_room_s_controls(lesson, index) -> None:
    step = lesson.steps[index]
    at = open_page("pages/lessons.py", lesson=lesson.id, step=str(index + 1))
    assert any(step.title in s.value for s in at.subheader)
    at.button(key=f"ls_{lesson.id}_{index}_open").click().run()
    assert_calm(at)
    assert at.get("title")[0].value.endswith(TITLES[step.room])  # the room it says
    if step.room != "breakit":  # the lab's verdict on a bug is an st.error by design
        assert not at.error, said(at)
    for key, value in step.settings.items():
        assert at.session_state[key] == value, key
    widgets = {w.key: w for w in at.main if getattr(w, "key", None) in step.settings}
    for key, widget in widgets.items():
        assert widget.value == step.settings[key], key
    if step.room != "sketch":  # the sketch lab's switches appear once there is a drawing
        assert widgets or not step.settings
