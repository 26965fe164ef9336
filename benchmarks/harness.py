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
    """

    id: str
    title: str
    value: float
    unit: str
    target: float
    spread: tuple[float, float] | None = None
    context: dict[str, float | str] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return self.value <= self.target

    def as_json(self) -> dict:
        return {**asdict(self), "met": self.met}


def seconds(fn: Callable[[], object]) -> float:
    """Wall seconds for one call of `fn`."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired_ratio(
    candidate: Callable[[], object], reference: Callable[[], object], repeats: int
) -> tuple[float, tuple[float, float], dict[str, float]]:
    """Median of candidate/reference time ratios over `repeats` back-to-back pairs.

    Pairing cancels slow drifts of a shared machine: both sides of a pair see the same load.
    Each side runs once untimed before its timed run, so it is measured in its steady state,
    not paying for the other's leftovers: numpy's OpenBLAS threads busy-wait ~0.1 s after a
    call, and a JAX epoch started inside that window shares the cores with them (measured: 28
    ms right after a numpy epoch, 15 ms right after another JAX epoch).
    Returns (median ratio, (min, max) ratio, absolute medians in seconds).
    """
    ratios, cand_times, ref_times = [], [], []
    for _ in range(repeats):
        reference()
        ref = seconds(reference)
        candidate()
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
