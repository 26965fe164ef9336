"""Real-browser fixtures: one `streamlit run` server and one headless Chromium per test module.

Without Chromium the tests skip, except in CI (env CI=true), where a missing browser is a
failure: CI installs it, so its absence means the set-up broke.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.server import CHROMIUM, CHROMIUM_ARGS, Server, chromium_available, streamlit_server

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # gitignored


def require_chromium() -> None:
    """Skip (or, in CI, fail) the test when the browser is not installed."""
    if chromium_available():
        return
    message = (f"Chromium not found at {CHROMIUM}: install it (`apt-get install -y chromium`) or "
               "point GLASSBOX_CHROMIUM at it")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium():
    """Headless Debian Chromium driven by Playwright (never `playwright install`; named apart
    from pytest-playwright's `browser`, which would want a downloaded browser)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """The app on a free loopback port, stopped after the module's tests."""
    require_chromium()  # no point starting a server nobody can look at
    with streamlit_server() as running:
        yield running


@pytest.fixture
def artefacts() -> Path:
    """Where screenshots go: test-artifacts/ at the repository root (kept by CI, not by git)."""
    ARTEFACTS.mkdir(exist_ok=True)
    return ARTEFACTS
