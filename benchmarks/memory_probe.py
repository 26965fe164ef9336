"""Memory over time (issue 18): RSS while training the FFNN (JAX) on many architectures in turn.

    python -m benchmarks.memory_probe                 # every remedy, 30 architectures each
    python -m benchmarks.memory_probe --only baseline clear_caches --sizes 12

Each remedy runs in a fresh subprocess (no server, engine only): it trains a one-hidden-layer
net of a new width for one short epoch, applies the remedy, and records RSS (psutil) after
each run. Printed per remedy: RSS after the warm-up runs, at the end, and the growth per new
architecture between them, in MB.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import subprocess
import sys
from dataclasses import replace

WARMUP = 6  # runs before the growth is measured: the first compiles load XLA itself
TRAIN_DIGITS = 512  # a short epoch: the growth comes from compiling, not from the data

REMEDIES = {
    "baseline": "nothing between runs (the engine clears JAX's caches when a new model evicts "
                "a kept chunk: engine.training.loop.keep_compiled_programs_bounded)",
    "malloc_trim": "glibc malloc_trim(0) after each run",
    "arenas": "the server's mallopt tuning (2 arenas, fixed mmap threshold) before the first run",
    "clear_chunks": "cache_clear() of the kept chunks, clear_cache() of every jitted function",
    "clear_caches": "jax.clear_caches() after each run",
    "clear_caches+trim": "jax.clear_caches() and malloc_trim(0) after each run",
}


def rss_mb() -> float:
    """This process's resident set size, MB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def malloc_trim() -> None:
    """Hand glibc's free heap pages back to the system (does nothing elsewhere)."""
    name = ctypes.util.find_library("c")
    if name is not None:
        ctypes.CDLL(name).malloc_trim(0)


def clear_jitted() -> None:
    """Drop the compiled programs of every jitted function and every lru cache of the FFNN and
    the training loop (the kept compiled chunks), whichever modules hold them."""
    modules = [module for name, module in list(sys.modules.items())
               if name.startswith(("engine.ffnn", "engine.training.loop"))]
    for module in modules:
        for value in vars(module).values():
            for method in ("clear_cache", "cache_clear"):
                if callable(getattr(value, method, None)):
                    getattr(value, method)()


def after_each_run(remedy: str, runs_so_far: int) -> None:
    """Apply `remedy` once a run has ended (and its generator been dropped)."""
    import jax

    gc.collect()
    if remedy == "clear_chunks":
        clear_jitted()
    if remedy.startswith("clear_caches"):
        jax.clear_caches()
    if remedy in ("malloc_trim", "clear_caches+trim"):
        malloc_trim()


def probe(remedy: str, sizes: int) -> list[float]:
    """RSS (MB) after each of `sizes` runs, one new hidden width each, with `remedy` applied."""
    from engine import ffnn
    from engine.data.mnist import embedded_dataset

    if remedy == "arenas":
        from engine.app.tuning import limit_malloc_arenas

        limit_malloc_arenas()
    split = embedded_dataset().split
    split = replace(split, x_train=split.x_train[:TRAIN_DIGITS],
                    y_train=split.y_train[:TRAIN_DIGITS])
    figures = []
    for run, width in enumerate(range(16, 16 + sizes), start=1):
        config = ffnn.TrainingConfig(ffnn.Architecture((width,)), epochs=1, batch_size=64)
        for _ in ffnn.training_run(config, split, evals_per_epoch=1):
            pass
        after_each_run(remedy, run)
        figures.append(rss_mb())
    return figures


def measure(remedy: str, sizes: int) -> dict[str, float]:
    """Run `probe` in a fresh interpreter; RSS after the warm-up and at the end, and the
    growth per new architecture in between (MB)."""
    code = (f"import json; from benchmarks.memory_probe import probe; "
            f"print(json.dumps(probe({remedy!r}, {sizes})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    rss = json.loads(out.strip().splitlines()[-1])
    return {"after_warmup_mb": rss[WARMUP - 1], "end_mb": rss[-1], "peak_mb": max(rss),
            "per_architecture_mb": (rss[-1] - rss[WARMUP - 1]) / (len(rss) - WARMUP),
            "series_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=REMEDIES, default=list(REMEDIES))
    parser.add_argument("--sizes", type=int, default=30, help="architectures per remedy")
    parser.add_argument("--series", action="store_true", help="print RSS after every run too")
    args = parser.parse_args()
    if args.sizes <= WARMUP:
        parser.error(f"--sizes must be over the {WARMUP} warm-up runs")
    print(f"{'remedy':<18} {'after warm-up':>13} {'end':>5} {'peak':>5} {'per arch':>9}  (MB)")
    for remedy in args.only:
        figures = measure(remedy, args.sizes)
        print(f"{remedy:<18} {figures['after_warmup_mb']:>13.0f} {figures['end_mb']:>5.0f} "
              f"{figures['peak_mb']:>5.0f} {figures['per_architecture_mb']:>9.2f}  "
              f"{REMEDIES[remedy]}", flush=True)
        if args.series:
            print("  " + " ".join(f"{mb:.0f}" for mb in figures["series_mb"]), flush=True)


if __name__ == "__main__":
    main()
