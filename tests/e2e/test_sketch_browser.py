"""The sketch lab end to end: mouse strokes on the real canvas reach every model in Chromium.

Screenshots land in test-artifacts/. With GLASSBOX_DOCS_SCREENSHOT=1 the small "7" also
refreshes docs/sketch.png, the README's picture of this page.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.server import APP_IDLE
from engine.predict import DEFAULT_MODELS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CANVAS = "canvas.upper-canvas"
GUESSES = "[data-testid='stMetricValue']"
TIMEOUT_MS = 30_000  # a cold server compiles every model on its first drawing


@pytest.fixture
def lab(chromium, server):
    """The sketch lab, loaded and idle, in a fresh tab wide enough for three columns."""
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)  # the home page, then its door: the way a visitor comes in
    page.wait_for_selector(APP_IDLE)
    page.get_by_role("link", name="Open Sketch lab").click()
    page.wait_for_selector(CANVAS)
    page.wait_for_selector(APP_IDLE)
    yield page
    page.close()


def whole_page_screenshot(page, path: Path) -> None:
    """Screenshot everything the page scrolls through: Streamlit scrolls an inner container, so
    `full_page` alone stops at the window's edge; the window grows to the content first."""
    height = page.evaluate("document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": page.viewport_size["width"], "height": height})
    page.wait_for_selector(APP_IDLE)
    page.screenshot(path=path)


def stroke(page, points: Sequence[tuple[float, float]]) -> None:
    """Draw one pen stroke through points given as fractions (x, y) of the canvas."""
    canvas = page.locator(CANVAS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()

    def at(point: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(point), steps=20)
    page.mouse.up()


def answers(page) -> list[str]:
    """Every model's top guess, in column order, once all of them are shown and the app is idle."""
    from playwright.sync_api import expect

    expect(page.locator(GUESSES)).to_have_count(len(DEFAULT_MODELS), timeout=TIMEOUT_MS)
    page.wait_for_selector(APP_IDLE)
    return page.locator(GUESSES).all_inner_texts()


def test_a_fresh_server_opens_a_deep_link_to_the_lab(chromium, server) -> None:
    """Runs first in this module, so its visit is the server's very first."""
    page = chromium.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server.url}/sketch")
    page.wait_for_selector(CANVAS)
    page.wait_for_selector(APP_IDLE)
    try:
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        page.close()


def test_a_drawn_one_is_read_by_every_model_and_the_cnn_says_1(lab, artefacts) -> None:
    stroke(lab, [(0.5, 0.15), (0.5, 0.85)])
    guesses = answers(lab)
    cnn_guess = guesses[list(DEFAULT_MODELS).index("cnn")]
    whole_page_screenshot(lab, artefacts / "sketch-one.png")
    assert cnn_guess == "1", guesses
    assert lab.get_by_text("pretrained default").count() == len(DEFAULT_MODELS)


def test_after_clear_a_small_off_centre_digit_is_still_read(lab, artefacts) -> None:
    from playwright.sync_api import expect

    stroke(lab, [(0.5, 0.15), (0.5, 0.85)])
    answers(lab)
    lab.get_by_role("button", name="Clear").click()
    expect(lab.locator(GUESSES)).to_have_count(0, timeout=TIMEOUT_MS)
    expect(lab.get_by_text("Draw a digit on the black canvas")).to_be_visible(timeout=TIMEOUT_MS)

    stroke(lab, [(0.55, 0.5), (0.9, 0.5), (0.65, 0.92)])  # a small "7" in the bottom right
    guesses = answers(lab)
    whole_page_screenshot(lab, artefacts / "sketch-small-off-centre.png")
    if os.environ.get("GLASSBOX_DOCS_SCREENSHOT") == "1":
        whole_page_screenshot(lab, ROOT / "docs" / "sketch.png")
    assert guesses[list(DEFAULT_MODELS).index("cnn")] == "7", guesses
