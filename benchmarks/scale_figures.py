"""Figures at scale. Full MNIST: the server's peak memory with a CNN run on it (M2) and the
CNN's time to 99.0% test accuracy (T3), on full MNIST where its files are here (env
GLASSBOX_MNIST_DIR, or downloaded into the cache), else on the named stand-in (engine.data.standin).
A class at once: 30 visitors drawing in the Sketch lab together (C1), and the lab's script run
for a new drawing (L4).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path

import jax
import numpy as np

from benchmarks.harness import Figure, median_and_spread
from engine import cnn
from engine.data import datasets, standin
from engine.data import mnist as data

T3_TARGET = 0.99
QUICK_STANDIN = 10_000  # --quick: 5,000 copies to train on, 5,000 to validate
# The CNN room's defaults: (16, 32) filters, Adam 5e-3, batch 64, shifts of 2 pixels, cosine
# decay over 6 epochs. T3 stops at the first evaluation (two per epoch) that reaches the target.
T3_CONFIG = cnn.TrainingConfig()
M2_EPOCHS = 1  # a whole epoch of 55,000 digits and its evaluations: the peak comes early


def real_full_mnist() -> data.Mnist | None:
    """Full MNIST's arrays where they are on this machine (env GLASSBOX_MNIST_DIR, else the
    download cache), None where they are not."""
    mnist = data.find_full_mnist()
    folder = datasets.cache_folder(datasets.SOURCES["mnist"])
    if mnist is None and datasets.is_downloaded(folder):
        mnist = data.read_idx_folder(folder)
    return mnist


@cache
def full_or_standin(quick: bool = False) -> data.Dataset:
    """Full MNIST under its split where it is here, else the stand-in (built once, ~15 s);
    with quick, a stand-in of QUICK_STANDIN digits in any case (a smoke run of the harness)."""
    mnist = None if quick else real_full_mnist()
    if mnist is None:
        return standin.standin_dataset(QUICK_STANDIN if quick else standin.STANDIN_SIZE)
    return datasets.as_dataset(datasets.SOURCES["mnist"], mnist)


# ----------------------------------------------------------------------------- T3

def seconds_to(config: cnn.TrainingConfig, dataset: data.Dataset, target: float
               ) -> tuple[float | None, float, float]:
    """(wall seconds until a test evaluation reaches target, compile included, or None if none
    did; the best test accuracy seen; the seconds the run took in all)."""
    start, best = time.perf_counter(), 0.0
    for event in cnn.training_run(config, dataset.split, dataset=dataset.name):
        best = max(best, event.test_accuracy or 0.0)
        if best >= target:
            break
    elapsed = time.perf_counter() - start
    return (elapsed if best >= target else None), best, elapsed


def time_to_99_figure(quick: bool = False) -> Figure:
    """T3: one run of T3_CONFIG (a fresh compile) on full MNIST or the stand-in, until its test
    accuracy reaches 99.0%. Not reached: the value is inf, the title says the best reached.
    With quick: one epoch on the small stand-in, to 50%."""
    config = replace(T3_CONFIG, epochs=1) if quick else T3_CONFIG
    target = 0.5 if quick else T3_TARGET
    dataset = full_or_standin(quick)
    jax.clear_caches()
    reached, best, run_s = seconds_to(config, dataset, target)
    outcome = "" if reached is not None else f"; not reached: best {best:.1%} in {run_s:.0f} s"
    return Figure("T3", f"CNN to {target:.1%} test accuracy, {dataset.name}{outcome}",
                  float("inf") if reached is None else reached, "s", 120.0,
                  context={"dataset": dataset.name, "best_test_accuracy": best,
                           "run_seconds": run_s, "device": jax.default_backend(),
                           "settings": config.spec.describe() + f", {config.epochs} epochs"})


# ----------------------------------------------------------------------------- M2

@contextlib.contextmanager
def full_mnist_env(quick: bool = False) -> Iterator[tuple[dict[str, str], str]]:
    """(environment for the server, the data set's name): nothing to add where full MNIST is
    here; else the stand-in written as a Keras-style mnist.npz into a temporary folder that
    env GLASSBOX_MNIST_DIR names (the room then calls it "Full MNIST")."""
    dataset = full_or_standin(quick)
    if not quick and real_full_mnist() is not None:
        yield {}, dataset.name
        return
    split = dataset.split
    with tempfile.TemporaryDirectory() as folder:
        np.savez(Path(folder) / data.KERAS_NPZ,
                 x_train=np.concatenate([split.x_train, split.x_val]),
                 y_train=np.concatenate([split.y_train, split.y_val]),
                 x_test=split.x_test, y_test=split.y_test)
        yield {data.MNIST_DIR_ENV: folder}, dataset.name


def cnn_run_on_full_mnist(page, url: str, epochs: int) -> None:
    """In one session: the CNN room on "Full MNIST", the defaults for `epochs`, to the end."""
    from benchmarks.app_figures import open_room
    from benchmarks.server import APP_IDLE

    page.goto(url)
    page.wait_for_selector(APP_IDLE, timeout=180_000)
    open_room(page, "CNN")
    picker = page.get_by_role("combobox", name="Data set")
    picker.click()  # the list may open below the window: type the choice instead of clicking it
    picker.press_sequentially("Full MNIST")
    picker.press("Enter")
    page.wait_for_selector(APP_IDLE, timeout=180_000)
    field = page.locator("input[aria-label='Epochs']")
    field.fill(str(epochs))
    field.press("Enter")
    page.wait_for_selector(APP_IDLE, timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Finished").first.wait_for(timeout=900_000)


def full_mnist_memory_figure(quick: bool = False, epochs: int = M2_EPOCHS) -> Figure:
    """M2: the server's peak RSS during a CNN run (the room's defaults, `epochs` epochs) on
    full MNIST or the stand-in (quick: the small stand-in), sampled every 0.2 s."""
    from playwright.sync_api import sync_playwright

    from benchmarks.app_figures import MemorySampler
    from benchmarks.server import CHROMIUM, CHROMIUM_ARGS, streamlit_server

    with full_mnist_env(quick) as (env, name), streamlit_server(env) as server, \
            sync_playwright() as playwright:
        sampler = MemorySampler(server.process.pid)
        sampler.start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        start = time.perf_counter()
        try:
            cnn_run_on_full_mnist(browser.new_page(), server.url, epochs)
        finally:
            sampler.done.set()
            sampler.join()
            browser.close()
    return Figure("M2", f"server peak RSS, a CNN run ({epochs} epoch) on {name}",
                  sampler.peak_mb, "MB", 1000.0,
                  context={"dataset": name, "run_seconds": time.perf_counter() - start})


# ----------------------------------------------------------------------------- L4

L4_DIGITS = 10  # drawings cycled through: each timed run gets a canvas unlike the one before
L4_WARM_UP = L4_DIGITS  # one pass: compiles, and per-server caches such as each digit's bars
FLOOR_PAGE = "import streamlit as st\n\nst.title('AppTest floor')\n"  # a page that does nothing


def apptest_ms(at) -> float:
    """Milliseconds of one `at.run()`; raises if the page did."""
    start = time.perf_counter()
    at.run()
    elapsed = 1e3 * (time.perf_counter() - start)
    if at.exception:
        raise RuntimeError(f"the page failed: {at.exception[0].value}")
    return elapsed


def sketch_rerun_figure(repeats: int) -> Figure:
    """L4: milliseconds of the Sketch lab's script run after a new drawing, warm, server side,
    median of `repeats`.

    Timed: AppTest's `run()` of the whole app (streamlit_app.py, its sidebar, then
    pages/sketch.py) after a new canvas value is set (a real digit drawn large; each run's
    differs from the one before, and nothing is cached per drawing): the canvas's PNG decoded,
    preprocessing, every model's answer, the answer tab's views as the page opens (the other
    tabs and closed panels wait to be asked), all of Streamlit's element building. Warm: after
    one untimed pass over the drawings. AppTest adds its own work (a new script runner and
    thread, the scripts compiled anew, the element tree parsed), so this bounds the server's
    run from above; the context gives that floor, AppTest's run of a page that does nothing,
    timed in turns with the lab.
    """
    from streamlit.testing.v1 import AppTest

    from tests.helpers import APP_TIMEOUT, ROOT, canvas_state, mnist_digit, mnist_on_canvas
    from ui.sketch import canvas_key

    drawings = [canvas_state(mnist_on_canvas(mnist_digit(label))) for label in range(L4_DIGITS)]
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT).run()
    at.switch_page("pages/sketch.py").run()
    floor = AppTest.from_string(FLOOR_PAGE).run()

    samples, floors = [], []
    for index in range(L4_WARM_UP + repeats):
        at.session_state[canvas_key("sk")] = drawings[index % L4_DIGITS]
        samples.append(apptest_ms(at))
        floors.append(apptest_ms(floor))
    median, spread = median_and_spread(samples[L4_WARM_UP:])
    return Figure("L4", "Sketch lab script run for a new drawing, warm (AppTest)", median, "ms",
                  50.0, spread, context={"apptest_floor_ms": statistics.median(
                      floors[L4_WARM_UP:])})


# ----------------------------------------------------------------------------- C1

C1_VISITORS = 30
CANVAS = "canvas.upper-canvas"
SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]  # a "7", in fractions of the canvas
C1_TIMEOUT_MS = 300_000  # a bound for a stuck page, not a speed claim
SETTLED_CPU_SHARE = 0.1  # of one core: Chromium below this for a second has drawn its pages


async def open_lab(browser, url: str):
    """A new visitor (a browser context of its own: its own session) on the Sketch lab, idle."""
    from benchmarks.server import APP_IDLE

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(C1_TIMEOUT_MS)
    await page.goto(f"{url}/sketch")
    await page.wait_for_selector(CANVAS)
    await page.wait_for_selector(APP_IDLE)
    return page


async def seconds_to_answer(page, n_models: int) -> float | None:
    """Draw the "7" on the page's canvas; seconds from the pen's lift to every model's guess
    shown, None when they never came."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    from benchmarks.server import ANSWERED_GUESSES

    canvas = page.locator(CANVAS)
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in SEVEN]
    await page.mouse.move(*points[0])
    await page.mouse.down()
    for point in points[1:]:
        await page.mouse.move(*point, steps=10)
    await page.mouse.up()
    lifted = time.perf_counter()
    try:
        await page.locator(ANSWERED_GUESSES).nth(n_models - 1).wait_for()
    except PlaywrightTimeout:
        return None
    return time.perf_counter() - lifted


def chromium_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process's Chromium: the browser and
    every page's renderer (the processes Playwright started)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "chrom" in " ".join(child.cmdline()):
                times = child.cpu_times()
                total += times.user + times.system
    return total


async def browsers_settled(idle_share: float = SETTLED_CPU_SHARE) -> float:
    """Wait until this process's Chromium uses under `idle_share` of a core for a second (the
    pages have drawn what they opened with); the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < C1_TIMEOUT_MS / 1000:
        before = chromium_cpu_seconds()
        await asyncio.sleep(1.0)
        if chromium_cpu_seconds() - before < idle_share:
            break
    return time.perf_counter() - start


async def class_draws(url: str, visitors: int, n_models: int
                      ) -> tuple[list[float | None], dict[str, float]]:
    """After one drawing that warms the server, `visitors` contexts in one headless Chromium
    open the lab and, once the browsers have settled, all draw at once: (each one's seconds
    to its answers (None: never), {"pages_settle_s": the seconds the opened pages took to
    settle, "browsers_cpu_s": Chromium's CPU seconds from the first stroke to the last answer}).

    A class opens the page, then draws for seconds: what the figure times is the answer to a
    drawing, not the rest of the page's first paint (30 pages opening at once keep the two
    cores busy for about half a minute)."""
    from playwright.async_api import async_playwright

    from benchmarks.server import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:  # the teacher draws first: the models' loading and compiling are not the class's
            await seconds_to_answer(await open_lab(browser, url), n_models)
            pages = await asyncio.gather(*(open_lab(browser, url) for _ in range(visitors)))
            settle_s = await browsers_settled()
            cpu_before = chromium_cpu_seconds()
            waits = await asyncio.gather(*(seconds_to_answer(page, n_models) for page in pages))
            return list(waits), {"pages_settle_s": settle_s,
                                 "browsers_cpu_s": chromium_cpu_seconds() - cpu_before}
        finally:
            await browser.close()


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the server process has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def class_figures(visitors: int = C1_VISITORS) -> list[Figure]:
    """C1: `visitors` draw in the Sketch lab at once: p95 from the pen's lift to every model's
    answer (inf unless all were answered), and the server's peak RSS meanwhile."""
    from benchmarks.app_figures import MemorySampler
    from benchmarks.server import streamlit_server
    from engine.app.predict import DEFAULT_MODELS

    with streamlit_server() as server:
        sampler = MemorySampler(server.process.pid)
        sampler.start()
        started, cpu_before = time.perf_counter(), server_cpu_seconds(server.process.pid)
        try:
            waits, browsers = asyncio.run(class_draws(server.url, visitors,
                                                      len(DEFAULT_MODELS)))
        finally:
            sampler.done.set()
            sampler.join()
        server_cpu = server_cpu_seconds(server.process.pid) - cpu_before
        wall = time.perf_counter() - started
    answered = sorted(wait for wait in waits if wait is not None)
    p95 = float(np.percentile(answered, 95)) if len(answered) == visitors else float("inf")
    spread = (answered[0], answered[-1]) if answered else None
    # The server's share of the machine, against the browsers', tells which of them the answers
    # waited for: on 2 cores, 30 Chromium pages compete with it.
    context = {"answered": len(answered), "visitors": visitors,
               "median_s": float(np.median(answered)) if answered else float("nan"),
               "server_cpu_s": server_cpu, "wall_s": wall, **browsers}
    return [Figure("C1", f"{visitors} visitors draw at once: {len(answered)}/{visitors} "
                         "answered; p95 pen lift -> every model's answer", p95, "s", 3.0, spread,
                   context),
            Figure("C1-rss", f"{visitors} visitors draw at once: server peak RSS",
                   sampler.peak_mb, "MB", 1000.0)]
