"""Timing primitives: paired ratios against a reference measured in the same run, with spread."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass
class Figure:
    """One row of the table: a measured value, its spread, its target and whether it is met.

    `value` is a ratio (unitless), seconds, milliseconds or megabytes, as `unit` says.
    `spread` is (min, max) over the paired repeats; `context` holds absolute timings for reading.
    `at_least`: the target is a floor (a share of a peak), not a ceiling.
    """

    id: str
    title: str
    value: float
    unit: str
    target: float
    spread: tuple[float, float] | None = None
    context: dict[str, float | str] = field(default_factory=dict)
    at_least: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.at_least else self.value <= self.target

    def as_json(self) -> dict:
        return {**asdict(self), "met": self.met}


def seconds(fn: Callable[[], object]) -> float:
    """Wall seconds for one call of `fn`."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


WARM_UP_SECONDS = 0.2


def warm_up(fn: Callable[[], object]) -> None:
    """Call `fn` untimed until WARM_UP_SECONDS have passed (at least once).

    By time, not by count: numpy's OpenBLAS threads busy-wait ~0.1 s after a call, and a JAX
    epoch started inside that window shares the cores with them (measured: 26-30 ms right
    after a numpy epoch, 15-17 ms in a run of JAX epochs); XLA's own threads, once parked,
    also take a few epochs to be quick again.
    """
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < WARM_UP_SECONDS:
        fn()


def paired_ratio(
    candidate: Callable[[], object], reference: Callable[[], object], repeats: int
) -> tuple[float, tuple[float, float], dict[str, float]]:
    """Median of candidate/reference time ratios over `repeats` back-to-back pairs.

    Pairing cancels slow drifts of a shared machine: both sides of a pair see the same load.
    Each side warms up untimed before its timed run (see `warm_up`), so it is measured in its
    steady state rather than paying for the other's leftovers.
    Returns (median ratio, (min, max) ratio, absolute medians in seconds).
    """
    ratios, cand_times, ref_times = [], [], []
    for _ in range(repeats):
        warm_up(reference)
        ref = seconds(reference)
        warm_up(candidate)
        cand = seconds(candidate)
        ratios.append(cand / ref)
        cand_times.append(cand)
        ref_times.append(ref)
    context = {
        "candidate_s": statistics.median(cand_times),
        "reference_s": statistics.median(ref_times),
    }
    return statistics.median(ratios), (min(ratios), max(ratios)), context


def median_and_spread(samples: list[float]) -> tuple[float, tuple[float, float]]:
    """Median of the samples and their (min, max)."""
    return statistics.median(samples), (min(samples), max(samples))
