"""The first lesson in a real browser: answer, open the room with its settings, come back, step on,
reload; and the break-it lab with a mystery bug. Screenshots land in test-artifacts/; with
GLASSBOX_DOCS_SCREENSHOT=1 they also refresh docs/lessons.png and docs/breakit.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmarks.server import APP_IDLE
from engine.app.lessons import load_lessons

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 60_000


def keep(page, artefacts: Path, name: str) -> None:
    """Screenshot the page to test-artifacts/<name>, and to docs/ when asked."""
    page.screenshot(path=artefacts / name)
    if os.environ.get("GLASSBOX_DOCS_SCREENSHOT") == "1":
        shutil.copy(artefacts / name, ROOT / "docs" / name)


@pytest.mark.slow
def test_the_first_lesson_end_to_end(chromium, server, artefacts) -> None:
    lesson = load_lessons()[0]
    page = chromium.new_page(viewport={"width": 1400, "height": 1100})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{server.url}/lessons")
        page.wait_for_url(f"**/lessons?lesson={lesson.id}&step=1")
        page.wait_for_selector(APP_IDLE)
        question = lesson.steps[0].question
        page.get_by_text(question.choices[question.answer], exact=True).click()
        page.wait_for_selector(APP_IDLE)
        page.get_by_text(question.reveal.split(':')[0]).first.wait_for()  # before any Markdown
        keep(page, artefacts, "lessons.png")

        page.get_by_role("button", name="Open the autodiff playground with these settings").click()
        page.wait_for_selector("h1:has-text('Autodiff playground')")
        page.wait_for_selector(APP_IDLE)
        formula = page.get_by_role("textbox", name="Formula").input_value()
        assert formula == lesson.steps[0].settings["ad_formula"]
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=artefacts / "lesson-room.png")

        page.locator("[data-testid='stSidebarNav']").get_by_text("Lessons").click()
        page.wait_for_selector("h1:has-text('Lessons')")
        page.wait_for_selector(APP_IDLE)
        page.get_by_text(lesson.steps[0].title).first.wait_for()  # back where the learner was
        for number in range(2, len(lesson.steps) + 1):
            page.get_by_role("button", name="Next step").click()
            page.wait_for_selector(APP_IDLE)
            page.wait_for_url(f"**step={number}")
            page.get_by_text(lesson.steps[number - 1].title).first.wait_for()
        page.reload()
        page.wait_for_selector(APP_IDLE)
        page.get_by_text(lesson.steps[-1].title).first.wait_for()  # the URL kept the place
        page.get_by_role("button", name="Next lesson").wait_for()
    finally:
        page.close()


def test_the_break_it_lab_with_a_mystery_bug(chromium, server, artefacts) -> None:
    page = chromium.new_page(viewport={"width": 1400, "height": 1250})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{server.url}/breakit")
        page.wait_for_selector(APP_IDLE)
        page.get_by_text("twin check passes").wait_for()
        page.get_by_role("combobox", name="Switch on").click()
        page.get_by_role("option", name="Mystery bug 4").click()
        page.wait_for_selector(APP_IDLE)
        page.get_by_text("twin check fails").wait_for()
        page.get_by_text("ReLU's mask dropped").click()
        page.wait_for_selector(APP_IDLE)
        page.get_by_text("Right: “ReLU's mask dropped”").wait_for()
        page.locator("h1").first.scroll_into_view_if_needed()
        assert page.locator("[data-testid='stException']").count() == 0
        keep(page, artefacts, "breakit.png")
    finally:
        page.close()
