"""Figures of the running app: start-up time (S1) and the server's peak memory (M1)."""

from __future__ import annotations

import time

from benchmarks.harness import Figure, median_and_spread
from benchmarks.server import APP_IDLE, CHROMIUM, CHROMIUM_ARGS, streamlit_server


def seconds_to_home_page(browser) -> float:
    """From `streamlit run` to the home page's title drawn in Chromium, in seconds."""
    start = time.perf_counter()
    with streamlit_server() as server:
        page = browser.new_page()
        page.goto(server.url)
        page.wait_for_selector(APP_IDLE, timeout=60_000)
        page.get_by_text("See how deep learning works").wait_for(timeout=60_000)
        elapsed = time.perf_counter() - start
        page.close()
    return elapsed


def startup_figure(repeats: int) -> Figure:
    """S1: median over `repeats` cold server starts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        samples = [seconds_to_home_page(browser) for _ in range(repeats)]
        browser.close()
    median, spread = median_and_spread(samples)
    return Figure("S1", "streamlit run -> home page rendered", median, "s", 4.0, spread)
