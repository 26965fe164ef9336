"""Every page in a real browser: deep links on a fresh server, and a training run that leaves the
page's open tab where it was (issue 18, item 3).

Screenshots land in test-artifacts/; with GLASSBOX_DOCS_SCREENSHOT=1 the run's also refreshes
docs/bugbash/item3.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.server import APP_IDLE, streamlit_server

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 60_000
# URL path -> the room's title, as its page writes it.
ROOMS = {"lessons": "Lessons", "sketch": "Sketch lab", "autodiff": "Autodiff playground",
         "feedforward": "Feed-forward net", "cnn": "CNN", "breakit": "Break-it lab"}


def selected_tab(page) -> str:
    """The label of the page's selected tab."""
    return page.get_by_role("tab", selected=True).first.inner_text().strip()


@pytest.mark.slow
@pytest.mark.parametrize("path", list(ROOMS))
def test_a_fresh_server_opens_a_deep_link_to_every_room(chromium, path) -> None:
    """The server's very first visit is the deep link (Streamlit's legacy multipage race, see
    ui.state.ensure_router): the room opens with the app's navigation, not file names."""
    with streamlit_server() as server:  # chromium (the fixture) is there, or this skipped
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(f"{server.url}/{path}")
            page.wait_for_selector("h1")
            page.wait_for_selector(APP_IDLE)
            assert ROOMS[path] in page.locator("h1").first.inner_text()
            nav = page.locator("[data-testid='stSidebarNav']").inner_text()
            assert "Feed-forward net" in nav and "feedforward" not in nav
            assert page.locator("[data-testid='stException']").count() == 0
        finally:
            page.close()


@pytest.mark.slow
def test_a_run_that_starts_and_ends_leaves_the_open_tab_open(chromium, server, artefacts):
    page = chromium.new_page(viewport={"width": 1400, "height": 1400})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{server.url}/feedforward")
        page.wait_for_selector(APP_IDLE)
        page.get_by_role("tab", name="Twin-engine check").click()
        assert selected_tab(page) == "Twin-engine check"
        page.get_by_label("Epochs").fill("2")
        page.get_by_label("Epochs").press("Enter")
        page.wait_for_selector(APP_IDLE)
        page.get_by_role("button", name="Start").click()
        page.wait_for_selector("[data-testid='stProgress']")
        assert selected_tab(page) == "Twin-engine check"  # started
        page.get_by_text("Finished 2 epochs").wait_for()
        page.wait_for_selector(APP_IDLE)
        assert selected_tab(page) == "Twin-engine check"  # ended
        page.get_by_role("tab", name="Twin-engine check").scroll_into_view_if_needed()
        page.screenshot(path=artefacts / "run-keeps-tab.png")
        if os.environ.get("GLASSBOX_DOCS_SCREENSHOT") == "1":
            (ROOT / "docs" / "bugbash").mkdir(exist_ok=True)
            page.screenshot(path=ROOT / "docs" / "bugbash" / "item3.png")
    finally:
        page.close()


@pytest.mark.slow
def test_back_after_a_run_leaves_the_room_in_one_press(chromium, server):
    """Issue 18, item 5: the run's id in the URL replaces the history entry, so Back goes to the
    page before the room, not to the room without ?run=."""
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(server.url)
        page.wait_for_selector(APP_IDLE)
        page.get_by_role("link", name="Feed-forward net").first.click()
        page.wait_for_url("**/feedforward")
        page.wait_for_selector(APP_IDLE)
        page.get_by_label("Epochs").fill("1")
        page.get_by_label("Epochs").press("Enter")
        page.wait_for_selector(APP_IDLE)
        page.get_by_role("button", name="Start").click()
        page.wait_for_url("**/feedforward?run=*")
        page.get_by_text("Finished 1 epoch").wait_for()
        page.go_back()
        page.wait_for_selector(APP_IDLE)
        assert "feedforward" not in page.url
    finally:
        page.close()
