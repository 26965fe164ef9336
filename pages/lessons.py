"""Lessons: short guided steps that open the rooms with the right settings and ask first."""

import streamlit as st

from engine.app.lessons import LessonError
from ui.state import ensure_router
from ui.views import lessons as views

ensure_router()

st.title(":material/school: Lessons")
st.caption("Short steps in order: each explains one idea, opens the room that shows it with the "
           "controls already set, says what to look at, and often asks you to predict first.")

try:
    all_lessons = views.lessons()
except LessonError as error:
    st.error(f"A lesson file is malformed, so the lessons cannot be shown: {error}")
    st.stop()

lesson_index, step_index = views.position_from_url(all_lessons)


def go_to(lesson: int, step: int) -> None:
    """Move to a lesson's step (a callback: it runs before the page is drawn)."""
    st.session_state[views.POSITION] = (all_lessons[lesson].id, step)
    st.query_params.update({views.LESSON_PARAM: all_lessons[lesson].id,
                            views.STEP_PARAM: str(step + 1)})


picked = st.selectbox("Lesson", range(len(all_lessons)), index=lesson_index,
                      format_func=lambda i: f"{i + 1} · {all_lessons[i].title}")
if picked != lesson_index:
    lesson_index, step_index = picked, 0
lesson = all_lessons[lesson_index]
views.show_position(lesson, step_index)

st.markdown(f"*{lesson.summary}*")
st.progress((step_index + 1) / len(lesson.steps),
            text=f"Lesson {lesson_index + 1} of {len(all_lessons)} · "
                 f"step {step_index + 1} of {len(lesson.steps)}")
views.show_step(lesson, step_index)

back, forward = st.columns(2)
if step_index > 0:
    back.button("Previous step", icon=":material/arrow_back:", on_click=go_to,
                args=(lesson_index, step_index - 1), key="ls_previous")
if step_index + 1 < len(lesson.steps):
    forward.button("Next step", icon=":material/arrow_forward:", on_click=go_to,
                   args=(lesson_index, step_index + 1), key="ls_next")
elif lesson_index + 1 < len(all_lessons):
    forward.button(f"Next lesson: {all_lessons[lesson_index + 1].title}",
                   icon=":material/arrow_forward:", on_click=go_to,
                   args=(lesson_index + 1, 0), key="ls_next")
else:
    forward.success("That was the last lesson. The rooms are yours now.")
