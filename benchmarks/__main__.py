"""Run every benchmark figure, print the table, write results.json and the ratio chart.

    python -m benchmarks            # the full table (several minutes)
    python -m benchmarks --quick    # seconds-long smoke run of the harness (figures not meaningful)
    python -m benchmarks --only R1 S1
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from benchmarks.chart import ratio_chart
from benchmarks.harness import Figure

HERE = Path(__file__).resolve().parent
PACKAGES = ["jax", "jaxlib", "numpy", "streamlit", "plotly", "pillow"]


def figure_builders(quick: bool, measured: dict[str, float]
                    ) -> dict[str, Callable[[], list[Figure]]]:
    """Figure id -> a function measuring it. Imports are deferred so --only stays cheap.
    measured: id -> value of the figures measured so far in this run."""
    from benchmarks import (
        cnn_figures,
        explain_figures,
        health_figures,
        inside_figures,
        landscape_figures,
        mlp_figures,
        scale_figures,
        sketch_latency,
    )

    repeats = 2 if quick else 7
    n_train = 512 if quick else None  # --quick checks the harness, not the speed
    return {
        "R1": lambda: [mlp_figures.autodiff_ratio_figure(repeats, n_train)],
        "R2": lambda: [mlp_figures.jax_ratio_figure(repeats, n_train)],
        "T1": lambda: mlp_figures.time_to_accuracy_figures(
            1 if quick else 3, target=0.5 if quick else 0.93),
        "R3": lambda: [cnn_figures.conv_ratio_figure(repeats, n_train)],
        "R4": lambda: [cnn_figures.gemm_fraction_figure(repeats, n_train)],
        "T2": lambda: [cnn_figures.time_to_accuracy_figure(
            1 if quick else 3, target=0.5 if quick else 0.975)],
        "L1": lambda: [sketch_latency.sketch_latency_figure(10 if quick else 100)],
        "L2": lambda: [landscape_figures.slice_figure("L2", "ffnn-jax", 2.0, 1 if quick else 3,
                                                      *((5, 100) if quick else ()))],
        "L3": lambda: [landscape_figures.slice_figure("L3", "cnn", 10.0, 1 if quick else 3,
                                                      *((5, 100) if quick else ()))],
        "D1": lambda: health_figures.health_overhead_figures(repeats),
        "D2": lambda: [health_figures.lr_finder_figure(1 if quick else 3)],
        "X1": lambda: [explain_figures.attribution_figure(3 if quick else 20)],
        "X2": lambda: [explain_figures.pgd_figure(3 if quick else 50)],
        "P1": lambda: [inside_figures.pca_figure(3 if quick else 20)],
        "P2": lambda: [inside_figures.actmax_figure(1 if quick else 5)],
        "S1": lambda: [app_figures().startup_figure(repeats=1 if quick else 5)],
        "M1": lambda: [app_figures().memory_figure(wait_for_end=not quick)],
        # M3's target is M1 + 100 MB: the M1 measured earlier in this run, if it was.
        "M3": lambda: [app_figures().memory_after_sessions_figure(
            measured.get("M1"), *((2, 1) if quick else ()))],
        # Full MNIST where its files are here, else the named stand-in (engine.data.standin).
        "M2": lambda: [scale_figures.full_mnist_memory_figure(quick)],
        "T3": lambda: [scale_figures.time_to_99_figure(quick)],
        "L4": lambda: [scale_figures.sketch_rerun_figure(5 if quick else 30)],
        "C1": lambda: scale_figures.class_figures(3 if quick else 30),
    }


def app_figures():
    """benchmarks.app_figures, imported only when S1 or M1 runs (it needs the dev packages)."""
    from benchmarks import app_figures

    return app_figures


def missing_browser_tools() -> list[str]:
    """What S1 and M1 need that this machine lacks (empty when nothing is missing)."""
    from benchmarks.server import CHROMIUM, chromium_available

    missing = [f"the Python package {name} (pip install -r requirements-dev.txt)"
               for name in ("playwright", "psutil") if importlib.util.find_spec(name) is None]
    if not chromium_available():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    return missing


def machine_description() -> dict[str, object]:
    """Where the figures were measured, JAX's device included (a GPU changes them all)."""
    import jax  # deferred: `--help` stays instant

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(device) for device in jax.devices()],
        "versions": versions,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def format_table(figures: list[Figure]) -> str:
    """Markdown table, the same one the README shows."""
    rows = [
        "| id | figure | value | spread (min-max) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        spread = f"{f.spread[0]:.2f}-{f.spread[1]:.2f}" if f.spread else ""
        rows.append(
            f"| {f.id} | {f.title} | {f.value:.2f} {f.unit} | {spread} | "
            f"{'>=' if f.at_least else '<='} {f.target:g} {f.unit} | {'yes' if f.met else 'NO'} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run of the harness")
    parser.add_argument("--only", nargs="*", metavar="ID", help="figure ids to run, e.g. R1 T1")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results.json and PNG")
    args = parser.parse_args(argv)

    measured: dict[str, float] = {}
    builders = figure_builders(args.quick, measured)
    wanted = args.only or list(builders)
    unknown = sorted(set(wanted) - set(builders))
    if unknown:
        parser.error(f"unknown figure id(s) {unknown}; known: {sorted(builders)}")
    in_browser = sorted({"S1", "M1", "M2", "M3", "C1"} & set(wanted))
    missing = missing_browser_tools() if in_browser else []
    if missing:
        parser.error(f"{', '.join(in_browser)} drive the app in Chromium; missing: "
                     f"{', '.join(missing)}. Install them, or leave those figures out with --only.")
    figures = []
    for figure_id in wanted:
        print(f"measuring {figure_id} ...", file=sys.stderr, flush=True)
        figures.extend(builders[figure_id]())
        measured.update({f.id: f.value for f in figures})

    table = format_table(figures)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {
        "quick": args.quick,
        "machine": machine_description(),
        "figures": [f.as_json() for f in figures],
        "table": table,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    ratio_chart(figures, args.out / "ratios.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
