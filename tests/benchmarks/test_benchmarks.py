"""`python -m benchmarks --quick` runs the whole harness end to end (the figures are not judged)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from benchmarks.__main__ import figure_builders, format_table
from benchmarks.harness import Figure, paired_ratio
from benchmarks.server import chromium_available


def test_paired_ratio_measures_a_known_ratio() -> None:
    def spin(n: int) -> None:
        sum(range(n))

    ratio, (low, high), context = paired_ratio(lambda: spin(400_000), lambda: spin(100_000), 3)
    assert low <= ratio <= high
    assert 1.5 < ratio < 12  # four times the work; wide bounds: the machine is shared
    assert context["candidate_s"] > context["reference_s"]


def test_table_marks_a_missed_target() -> None:
    table = format_table([Figure("R9", "slow thing", 2.0, "x", 1.25, (1.8, 2.2)),
                          Figure("L9", "fast thing", 3.0, "ms", 30.0)])
    assert "| R9 | slow thing | 2.00 x | 1.80-2.20 | <= 1.25 x | NO |" in table
    assert "| L9 | fast thing | 3.00 ms |  | <= 30 ms | yes |" in table


@pytest.mark.slow
def test_quick_run_prints_every_figure_and_writes_results(tmp_path: Path) -> None:
    if not chromium_available():
        pytest.skip("S1 needs Chromium")
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    ids = {f["id"].split("-")[0] for f in results["figures"]}
    assert ids == set(figure_builders(quick=True, measured={}))
    for figure in results["figures"]:
        assert figure["value"] > 0
        assert f"| {figure['id']} |" in done.stdout
    assert results["machine"]["cpu_count"] >= 1
    assert (tmp_path / "ratios.png").stat().st_size > 1000
