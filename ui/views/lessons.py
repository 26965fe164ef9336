"""The lessons page's views: a step, its "try this" that sets a room's controls, its question."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import streamlit as st

from engine import cnn, ffnn
from engine.app.lessons import Lesson, Setting, Step, load_lessons
from engine.autodiff.expr import FormulaError, parse_formula
from engine.cnn.model import PADDINGS
from engine.nn.layers import ACTIVATIONS
from ui.rooms.controls import KERNEL_SIZES, LOSS_NAMES, OPTIMIZER_NAMES, POOL_NAMES
from ui.state import defaults
from ui.views.breakit import BUG_KEY, bug_label

ROOM_PAGES = {  # a step's room -> (its page, how a button names it)
    "autodiff": ("pages/autodiff.py", "the autodiff playground"),
    "feedforward": ("pages/feedforward.py", "the feed-forward net"),
    "cnn": ("pages/cnn.py", "the CNN"),
    "sketch": ("pages/sketch.py", "the sketch lab"),
    "breakit": ("pages/breakit.py", "the break-it lab"),
}
ROOM_PREFIXES = {"autodiff": "ad_", "feedforward": "ff_", "cnn": "cnn_", "sketch": "sk_",
                 "breakit": "bk_"}
# Controls with a fixed set of values: the rooms' own lists.
CHOICES: dict[str, Any] = {
    "ff_backend": ffnn.BACKENDS, "ff_activation": ACTIVATIONS, "ff_loss": LOSS_NAMES,
    "ff_optimizer": OPTIMIZER_NAMES, "cnn_optimizer": OPTIMIZER_NAMES, "cnn_pool": POOL_NAMES,
    "cnn_kernel": KERNEL_SIZES, "cnn_padding": PADDINGS, "ad_digit": range(10),
}
# Controls typed as text: the parser the room itself uses.
PARSERS: dict[str, Callable[[str], Any]] = {
    "ff_hidden": ffnn.parse_hidden, "cnn_filters": cnn.parse_filters, "ad_formula": parse_formula,
}
LESSON_PARAM, STEP_PARAM = "lesson", "step"  # the URL's query parameters
POSITION = "ls_position"  # session state: (lesson id, step index) shown last


@cache
def lessons() -> tuple[Lesson, ...]:
    """Every lesson in lessons/ (read once per server; LessonError if a file is malformed)."""
    return load_lessons()


def _type_matches(value: Setting, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return default is None or isinstance(value, type(default))


def setting_problems(step: Step) -> list[str]:
    """Why the step's controls cannot be set in its room (empty if they can), one sentence each."""
    problems = []
    known = defaults()  # every control a lesson may set, with its default (its type)
    for key, value in step.settings.items():
        if not key.startswith(ROOM_PREFIXES[step.room or ""]):
            problems.append(f"`{key}` is not a control of the {step.room} room.")
        elif key.startswith("ad_var_"):  # a formula's variables: any number
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"`{key}` must be a number.")
        elif key not in known:
            problems.append(f"`{key}` is not a known control.")
        elif not _type_matches(value, known[key]):
            problems.append(f"`{key}` must be like {known[key]!r}, got {value!r}.")
        elif key in CHOICES and value not in CHOICES[key]:
            problems.append(f"`{key}` must be one of {list(CHOICES[key])}, got {value!r}.")
        elif key in PARSERS:
            try:
                PARSERS[key](value)
            except (ValueError, FormulaError) as error:
                problems.append(f"`{key}`: {error}")
    return problems


def describe_setting(key: str, value: Setting) -> str:
    """"learning rate = 0.002" for ("ff_learning_rate", 0.002). The break-it lab's switch is
    named as the lab names it ("Mystery bug 3"), so a step never gives its mystery away."""
    if key == BUG_KEY and isinstance(value, str):
        return f"the switch = {bug_label(value)}"
    name = key.split("_", 1)[1].removeprefix("var_").replace("_", " ")
    shown = {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value
    return f"{name} = `{shown}`" if shown != "" else f"{name} = (empty)"


# --- position in the URL ---------------------------------------------------------------------


def position_from_url(all_lessons: tuple[Lesson, ...]) -> tuple[int, int]:
    """(lesson index, step index) the URL names (?lesson=<id>&step=<1-based>), else the last one
    shown in this session, else the first step of the first lesson. Out-of-range steps are
    clamped; an unknown lesson gets an st.warning."""
    ids = [lesson.id for lesson in all_lessons]
    wanted = st.query_params.get(LESSON_PARAM)
    if wanted is None:
        last_id, step = st.session_state.get(POSITION, (ids[0], 0))
        return ids.index(last_id) if last_id in ids else 0, step
    if wanted not in ids:
        st.warning(f"There is no lesson called “{wanted}”; starting at the first one.")
        return 0, 0
    index = ids.index(wanted)
    try:
        step = int(st.query_params.get(STEP_PARAM, "1")) - 1
    except ValueError:
        step = 0
    return index, min(max(step, 0), len(all_lessons[index].steps) - 1)


def show_position(lesson: Lesson, step: int) -> None:
    """Keep the position in the URL (a reload or a bookmark comes back here) and the session."""
    st.session_state[POSITION] = (lesson.id, step)
    wanted = {LESSON_PARAM: lesson.id, STEP_PARAM: str(step + 1)}
    if {k: st.query_params.get(k) for k in wanted} != wanted:
        st.query_params.update(wanted)


# --- a step ----------------------------------------------------------------------------------


def try_this(step: Step, key: str) -> None:
    """The step's "try this": what it sets, and a button that sets it and opens the room."""
    if step.room is None:
        return
    page, name = ROOM_PAGES[step.room]
    with st.container(border=True):
        st.markdown("**Try this**")
        if step.settings:
            st.markdown("Sets " + ", ".join(describe_setting(k, v)
                                            for k, v in step.settings.items()) + ".")
        if st.button(f"Open {name}" + (" with these settings" if step.settings else ""),
                     type="primary", icon=":material/open_in_new:", key=f"{key}_open"):
            st.session_state.update(step.settings)
            st.switch_page(page)
        if step.look:
            st.info(f"**Look at:** {step.look}", icon=":material/visibility:")


def ask(step: Step, key: str) -> None:
    """The step's question; the reveal only after an answer is picked."""
    question = step.question
    if question is None:
        return
    with st.container(border=True):
        picked = st.radio(f"**Before you look:** {question.ask}", range(len(question.choices)),
                          format_func=lambda i: question.choices[i], index=None,
                          key=f"{key}_answer")
        if picked is None:
            st.caption("Pick an answer to see the explanation.")
        elif picked == question.answer:
            st.success(f"Right. {question.reveal}", icon=":material/check_circle:")
        else:
            st.error(f"Not quite: the answer is “{question.choices[question.answer]}”. "
                     f"{question.reveal}", icon=":material/lightbulb:")


def show_step(lesson: Lesson, index: int) -> None:
    """Step `index` of `lesson`: text, try this, question."""
    step = lesson.steps[index]
    key = f"ls_{lesson.id}_{index}"
    st.subheader(f"{index + 1} · {step.title}", anchor=False)
    st.markdown(step.text)
    try_this(step, key)
    ask(step, key)

