"""Figures of the running app: start-up time (S1) and the server's peak memory (M1)."""

from __future__ import annotations

import contextlib
import threading
import time

import psutil

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


def peak_rss_mb(process: psutil.Process) -> float:
    """Resident memory of the process and its children, in MB."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 2**20


class MemorySampler(threading.Thread):
    """Samples a process tree's RSS every `interval` seconds until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.process, self.interval = psutil.Process(pid), interval
        self.peak_mb = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak_mb = max(self.peak_mb, peak_rss_mb(self.process))
            self.done.wait(self.interval)


def open_room(page, title: str) -> None:
    """Go to a room through the sidebar, as a visitor does (page.goto would start a new session)."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).click()
    page.wait_for_timeout(500)
    page.wait_for_selector(APP_IDLE, timeout=180_000)


def train_on_every_page(page, url: str, wait_for_end: bool) -> None:
    """In one session: a training run on the FFNN and CNN pages, then the overfit demo."""
    page.goto(url)
    page.wait_for_selector(APP_IDLE, timeout=180_000)
    for title, button in (("Feed-forward net", "Start"), ("CNN", "Train")):
        open_room(page, title)
        page.get_by_role("button", name=button, exact=True).click()
        page.wait_for_timeout(1000)
    open_room(page, "Autodiff playground")
    page.get_by_role("button", name="Train on this digit").click()
    page.wait_for_timeout(500)
    page.wait_for_selector(APP_IDLE, timeout=180_000)
    if not wait_for_end:
        return
    for title in ("Feed-forward net", "CNN"):
        open_room(page, title)
        page.get_by_text("Finished").first.wait_for(timeout=180_000)


def memory_figure(wait_for_end: bool = True) -> Figure:
    """M1: the server's peak RSS while one training run goes on each page (default settings)."""
    from playwright.sync_api import sync_playwright

    with streamlit_server() as server, sync_playwright() as playwright:
        sampler = MemorySampler(server.process.pid)
        sampler.start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            train_on_every_page(page, server.url, wait_for_end)
        finally:
            sampler.done.set()
            sampler.join()
            browser.close()
    return Figure("M1", "server peak RSS, a training run on each page", sampler.peak_mb, "MB",
                  700.0)


M3_SESSIONS = 8
M3_RUNS_PER_SESSION = 5
M3_WIDTHS = tuple(range(24, 24 + 8 * 20, 8))  # 20 architectures: 784-w-10, w = 24 ... 176
SESSION_TTL_SECONDS = 5  # how soon the server may drop a closed session (default 120 s)


def train_one_width(page, width: int) -> None:
    """In the open feed-forward room: a 1-epoch run of a 784-width-10 net, to its end."""
    page.locator("input[aria-label='Hidden layers (units, comma-separated)']").fill(str(width))
    epochs = page.locator("input[aria-label='Epochs']")
    epochs.fill("1")
    epochs.press("Enter")
    page.wait_for_selector(APP_IDLE, timeout=60_000)
    page.get_by_role("button", name="Start", exact=True).click()
    page.get_by_text(f"784-{width}-10").first.wait_for(timeout=180_000)  # adopted: it ended
    page.wait_for_selector(APP_IDLE, timeout=60_000)


def runs_in_sessions(browser, url: str, sessions: int, runs_per_session: int) -> None:
    """Browser sessions, one after another, each training runs_per_session nets of different
    widths (every width twice over M3's 40 runs), then closing."""
    widths = iter(M3_WIDTHS * 2)
    for _ in range(sessions):
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector(APP_IDLE, timeout=180_000)
        open_room(page, "Feed-forward net")
        for _ in range(runs_per_session):
            train_one_width(page, next(widths))
        context.close()


def memory_after_sessions_figure(m1_mb: float | None, sessions: int = M3_SESSIONS,
                                 runs_per_session: int = M3_RUNS_PER_SESSION) -> Figure:
    """M3: the server's RSS once 40 runs of 20 architectures in 8 sessions are over and the
    sessions closed (and dropped by the server); target M1 + 100 MB (M1 of this run if given).
    Fewer sessions and runs for a smoke run."""
    from playwright.sync_api import sync_playwright

    env = {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(SESSION_TTL_SECONDS)}
    with streamlit_server(env) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            runs_in_sessions(browser, server.url, sessions, runs_per_session)
        finally:
            browser.close()
        time.sleep(3 * SESSION_TTL_SECONDS)  # the server drops the closed sessions
        rss = peak_rss_mb(psutil.Process(server.process.pid))
    return Figure("M3", "server RSS after 40 runs (20 architectures) in 8 closed sessions",
                  rss, "MB", (m1_mb or 700.0) + 100.0)
