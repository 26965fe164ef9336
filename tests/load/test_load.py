"""Load test: six real browser sessions start a training run at once against one local server.

Marked `load`: kept out of the default `pytest` run, run by `.ci/run` (`pytest -m load`).
One `streamlit run` on a loopback port, one headless Chromium with six contexts (six separate
sessions). Each session sets a tiny feed-forward net (its own hidden width, so its model is
recognisable) and presses Start at once. The server trains `max_concurrent_runs` (2) at a time,
so the others must wait and show their place in the queue. Throughout, a thread polls
`/_stcore/health` and another samples the server's memory. Passes when every run finishes, each
session shows only its own run and model, health answers within HEALTH_BOUND, and the server's
peak memory stays under PEAK_RSS_BOUND_MB. Bounded: six sessions, DEADLINE seconds at most.
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import psutil
import pytest

from benchmarks.server import (
    APP_IDLE,
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_available,
    streamlit_server,
)

pytestmark = pytest.mark.load

SESSIONS = 6
HIDDEN = [10 + i for i in range(SESSIONS)]  # one width per session: whose model is whose
EPOCHS, BATCH = 4, 32  # jax.grad (the default), ~460 steps: seconds, so the queue is visible
DEADLINE = 480  # s for the whole test, server start included (a bound, not a speed claim)
# s: every health check must answer within this. A liveness bound, not a speed claim (that would
# fail on a slower machine): a server whose event loop is starved stops answering for tens of
# seconds, and hosting platforms restart one that misses its probe for several seconds. The
# worst latency is printed; measured here 0.4-2.6 s depending on the machine's other load (the
# previous bound of 1 s failed on this very machine at the commit that set it).
HEALTH_BOUND = 5.0
PEAK_RSS_BOUND_MB = 1500  # measured here: 500-670 MB (server and its children, 2-core machine)
SLOTS = 2


@dataclass
class Watch:
    """What the background threads saw while the sessions trained."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    peak_rss: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


def poll_health(url: str, watch: Watch) -> None:
    while not watch.stop.is_set():
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as reply:
                ok = reply.read().strip() == b"ok"
        except OSError as error:
            ok, error_text = False, str(error)
        else:
            error_text = "not ok"
        watch.latencies.append(time.perf_counter() - start)
        if not ok:
            watch.failures.append(error_text)
        watch.stop.wait(0.2)


def sample_memory(pid: int, watch: Watch) -> None:
    server = psutil.Process(pid)
    while not watch.stop.is_set():
        try:
            processes = [server, *server.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in processes)
        except psutil.Error:
            rss = 0
        watch.peak_rss = max(watch.peak_rss, rss)
        watch.stop.wait(0.1)


def open_feedforward(context, url: str, hidden: int):
    """A session on the feed-forward page with tiny settings entered, ready to start."""
    page = context.new_page()
    page.goto(f"{url}/feedforward", timeout=60_000)
    page.wait_for_selector(APP_IDLE, timeout=60_000)
    for label, value in [("Hidden layers (units, comma-separated)", str(hidden)),
                         ("Epochs", str(EPOCHS)), ("Batch size", str(BATCH))]:
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        page.wait_for_selector(APP_IDLE)
    return page


def test_six_sessions_train_at_once(tmp_path):
    if not chromium_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    began = time.monotonic()
    watch = Watch()
    env = {"GLASSBOX_RUNS_DIR": str(tmp_path / "runs"), "GLASSBOX_MAX_CONCURRENT_RUNS": str(SLOTS)}
    with streamlit_server(env=env) as server, sync_playwright() as playwright:
        threads = [threading.Thread(target=poll_health, args=(server.url, watch)),
                   threading.Thread(target=sample_memory, args=(server.process.pid, watch))]
        for thread in threads:
            thread.start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pages = [open_feedforward(browser.new_context(), server.url, h) for h in HIDDEN]
            for page in pages:  # all at once: each click returns as soon as it is sent
                page.get_by_role("button", name="Start").click(no_wait_after=True)
            positions: set[int] = set()
            finished: set[int] = set()
            while len(finished) < SESSIONS:
                assert time.monotonic() - began < DEADLINE, f"only {len(finished)} runs ended"
                for i, page in enumerate(pages):
                    text = page.inner_text("body")
                    positions |= {int(n) for n in re.findall(r"number (\d+) in the queue", text)}
                    if "Finished 4 epochs" in text:
                        finished.add(i)
                time.sleep(0.3)
            ids = []
            for page, hidden in zip(pages, HIDDEN, strict=True):
                page.wait_for_selector(APP_IDLE)
                text = page.inner_text("body")
                assert f"your feed-forward net (784-{hidden}-10, relu" in text
                others = [h for h in HIDDEN if h != hidden and f"784-{h}-10" in text]
                assert others == [], f"session {hidden} sees the models of {others}"
                ids.append(re.search(r"[?&]run=([A-Za-z0-9_-]{22})", page.url).group(1))
            assert len(set(ids)) == SESSIONS  # each session its own run id
        finally:
            browser.close()
            watch.stop.set()
            for thread in threads:
                thread.join()
    elapsed = time.monotonic() - began
    worst = max(watch.latencies)
    print(f"\nload test: {SESSIONS} sessions, {len(finished)} runs finished ({SLOTS} at a time), "
          f"queue positions seen {sorted(positions)}, worst health latency {worst * 1000:.0f} ms "
          f"over {len(watch.latencies)} checks, peak server memory "
          f"{watch.peak_rss / 2**20:.0f} MB (bound {PEAK_RSS_BOUND_MB} MB), {elapsed:.0f} s")
    assert watch.failures == []
    assert worst < HEALTH_BOUND
    assert positions >= {1, 2}, positions  # runs waited in the queue and were told so
    assert watch.peak_rss < PEAK_RSS_BOUND_MB * 2**20
