"""Guided lessons as data: one TOML file per lesson in lessons/, checked against a small schema.

A lesson file (see README, "For teachers: writing a lesson"):

    title = "A formula is a graph"
    summary = "One sentence on what the lesson shows."

    [[steps]]                     # 1 to 8 steps, in order
    title = "Type a formula"
    text = "A few sentences (Markdown)."
    room = "autodiff"             # optional: the page its "try this" opens (ROOMS)
    look = "What to look at there."
    [steps.set]                   # optional: the room's controls to set, widget key = value
    ad_formula = "x*y + x"
    [steps.question]              # optional: asked before the reveal
    ask = "Which input gets the larger gradient?"
    choices = ["x", "y"]
    answer = 0                    # index into choices
    reveal = "Why that is the answer."

The lesson's id (its URL name) is the file name without its leading "NN-" and ".toml"; files are
taken in name order. Whether a step's controls exist in its room is checked on the UI side.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LESSONS_DIR = Path(__file__).resolve().parents[2] / "lessons"
ROOMS = ("autodiff", "feedforward", "cnn", "sketch", "breakit")  # the pages a step may open
MAX_STEPS = 8
Setting = str | int | float | bool


class LessonError(ValueError):
    """A lesson file that does not follow the schema; the message names the file and field."""


@dataclass(frozen=True)
class Question:
    """Asked before the reveal: the learner picks one of `choices`; `answer` is the right one's
    index, `reveal` says why."""

    ask: str
    choices: tuple[str, ...]
    answer: int
    reveal: str


@dataclass(frozen=True)
class Step:
    """One step: text, what to look at, and optionally a room to open with `settings` (widget
    key -> value) and a question."""

    title: str
    text: str
    look: str = ""
    room: str | None = None
    settings: dict[str, Setting] = field(default_factory=dict)
    question: Question | None = None


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    summary: str
    steps: tuple[Step, ...]


def _text(table: dict[str, Any], name: str, where: str, required: bool = True) -> str:
    value = table.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise LessonError(f"{where}: `{name}` must be a non-empty text")
    return value.strip()


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise LessonError(f"{where}: unknown field(s) {extra}; allowed: {sorted(allowed)}")


def _question(table: Any, where: str) -> Question:
    if not isinstance(table, dict):
        raise LessonError(f"{where}: must be a table")
    _unknown(table, {"ask", "choices", "answer", "reveal"}, where)
    choices = table.get("choices")
    if (not isinstance(choices, list) or len(choices) < 2
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        raise LessonError(f"{where}: `choices` must be a list of at least two texts")
    answer = table.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise LessonError(f"{where}: `answer` must be the index of a choice, 0 to "
                          f"{len(choices) - 1}")
    return Question(_text(table, "ask", where), tuple(choices), answer,
                    _text(table, "reveal", where))


def _step(table: Any, where: str) -> Step:
    if not isinstance(table, dict):
        raise LessonError(f"{where}: must be a table")
    _unknown(table, {"title", "text", "look", "room", "set", "question"}, where)
    room = table.get("room")
    if room is not None and room not in ROOMS:
        raise LessonError(f"{where}: `room` must be one of {list(ROOMS)}, got {room!r}")
    settings = table.get("set", {})
    if not isinstance(settings, dict) or not all(
            isinstance(v, Setting) for v in settings.values()):
        raise LessonError(f"{where}: `set` must map control keys to texts, numbers or booleans")
    if settings and room is None:
        raise LessonError(f"{where}: `set` needs a `room` whose controls it sets")
    question = table.get("question")
    return Step(_text(table, "title", where), _text(table, "text", where),
                _text(table, "look", where, required=False), room, dict(settings),
                None if question is None else _question(question, f"{where}.question"))


def lesson_id(path: Path) -> str:
    """"03-a-neuron.toml" -> "a-neuron"."""
    return re.sub(r"^\d+[-_]", "", path.stem)


def parse_lesson(text: str, lesson: str) -> Lesson:
    """The lesson in TOML `text`, named `lesson` (its id); raises LessonError naming the field."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LessonError(f"{lesson}: not valid TOML ({error})") from None
    _unknown(table, {"title", "summary", "steps"}, lesson)
    steps = table.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise LessonError(f"{lesson}: needs 1 to {MAX_STEPS} [[steps]]")
    return Lesson(lesson, _text(table, "title", lesson), _text(table, "summary", lesson),
                  tuple(_step(s, f"{lesson}: steps[{i}]") for i, s in enumerate(steps)))


def load_lessons(folder: Path = LESSONS_DIR) -> tuple[Lesson, ...]:
    """Every lesson in `folder` (*.toml, in name order); raises LessonError for a bad one."""
    lessons = tuple(parse_lesson(path.read_text(encoding="utf-8"), lesson_id(path))
                    for path in sorted(folder.glob("*.toml")))
    ids = [lesson.id for lesson in lessons]
    if len(set(ids)) != len(ids):
        raise LessonError(f"two lessons share an id: {ids}")
    return lessons
