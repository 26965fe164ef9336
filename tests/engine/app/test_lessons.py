"""Lessons as data: the schema's checks, and every shipped lesson valid for the rooms it drives."""

from pathlib import Path

import pytest

from engine.app.lessons import LESSONS_DIR, LessonError, lesson_id, load_lessons, parse_lesson
from ui.views.breakit import BUG_KEY, MYSTERY
from ui.views.lessons import describe_setting, setting_problems

GOOD = '''
title = "T"
summary = "S"
[[steps]]
title = "One"
text = "Words."
room = "feedforward"
look = "There."
[steps.set]
ff_hidden = "64"
ff_learning_rate = 0.01
[steps.question]
ask = "Which?"
choices = ["a", "b"]
answer = 1
reveal = "Because."
'''


def test_a_good_lesson_parses() -> None:
    lesson = parse_lesson(GOOD, "t")
    step = lesson.steps[0]
    assert (lesson.title, step.room, step.settings) == ("T", "feedforward",
                                                        {"ff_hidden": "64",
                                                         "ff_learning_rate": 0.01})
    assert step.question.answer == 1 and step.question.choices == ("a", "b")
    assert setting_problems(step) == []


@pytest.mark.parametrize(("broken", "message"), [
    (GOOD.replace('title = "T"', ""), "`title`"),
    (GOOD.replace('room = "feedforward"', 'room = "kitchen"'), "`room` must be one of"),
    (GOOD.replace('room = "feedforward"', ""), "`set` needs a `room`"),
    (GOOD.replace("answer = 1", "answer = 2"), "`answer` must be the index"),
    (GOOD.replace('choices = ["a", "b"]', 'choices = ["a"]'), "at least two"),
    (GOOD.replace('look = "There."', 'look = "There."\ncolour = "red"'), "unknown field"),
    (GOOD.replace('ff_hidden = "64"', "ff_hidden = [64]"), "`set` must map"),
    (GOOD + "[[oops", "not valid TOML"),
    ('title = "T"\nsummary = "S"\n', "needs 1 to"),
])
def test_schema_errors_name_the_field(broken: str, message: str) -> None:
    with pytest.raises(LessonError, match=message):
        parse_lesson(broken, "t")


@pytest.mark.parametrize(("settings", "message"), [
    ('ff_loss = "hinge"', "must be one of"),
    ('ff_hidden = "12, x"', "ff_hidden"),
    ("ff_epochs = 2.5", "must be like"),
    ("ff_continue = 1", "must be like"),
    ('cnn_kernel = 3', "not a control of the feedforward room"),
    ('ff_nonsense = 3', "not a known control"),
])
def test_settings_are_checked_against_the_room(settings: str, message: str) -> None:
    text = GOOD.replace('ff_hidden = "64"', settings)
    problems = setting_problems(parse_lesson(text, "t").steps[0])
    assert any(message in p for p in problems), problems


def test_formulas_in_lessons_are_parsed_by_the_playground_s_parser() -> None:
    text = GOOD.replace('room = "feedforward"', 'room = "autodiff"').replace(
        'ff_hidden = "64"\nff_learning_rate = 0.01', 'ad_formula = "x**"')
    assert setting_problems(parse_lesson(text, "t").steps[0])


def test_shipped_lessons_are_valid_and_in_order() -> None:
    lessons = load_lessons()
    assert 7 <= len(lessons) <= 9
    for lesson in lessons:
        assert 3 <= len(lesson.steps) <= 6, lesson.id
        assert any(step.question for step in lesson.steps), lesson.id
        for step in lesson.steps:
            assert step.room and step.look, (lesson.id, step.title)
            assert setting_problems(step) == [], (lesson.id, step.title)
    assert lessons[0].id == "a-formula-is-a-graph"
    assert lessons[-1].steps[0].room == "breakit"


def test_lesson_ids_and_duplicates(tmp_path: Path) -> None:
    assert lesson_id(Path("03-a-neuron.toml")) == "a-neuron"
    (tmp_path / "01-same.toml").write_text(GOOD)
    (tmp_path / "02-same.toml").write_text(GOOD)
    with pytest.raises(LessonError, match="share an id"):
        load_lessons(tmp_path)
    assert LESSONS_DIR.name == "lessons"


def test_settings_are_described_in_words() -> None:
    assert describe_setting("ff_learning_rate", 0.002) == "learning rate = `0.002`"
    assert describe_setting("ad_var_x", 2.0) == "x = `2.0`"


@pytest.mark.parametrize("bug", MYSTERY)
def test_a_step_that_switches_a_mystery_bug_on_does_not_name_it(bug):
    """Issue 27: "Sets bug = relu_mask" gave lesson 9's mysteries away."""
    said = describe_setting(BUG_KEY, bug)
    assert said == f"the switch = Mystery bug {MYSTERY.index(bug) + 1}"
    assert bug not in said and bug.replace("_", " ") not in said
    assert describe_setting("sk_centre", False) == "centre = `off`"
    assert describe_setting("ff_hidden", "") == "hidden = (empty)"
