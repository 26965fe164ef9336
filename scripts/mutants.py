"""Mutation testing by hand: plant one plausible bug at a time in engine/ and see whether the
tests that should catch it do.

    python scripts/mutants.py                  # every mutant, about 12 minutes on 2 cores
    python scripts/mutants.py --list           # their names, files and tests
    python scripts/mutants.py --only NAME      # one mutant (repeat --only for more)
    python scripts/mutants.py --only NAME --tests tests/x.py::test_y   # other tests for it

Each mutant replaces one exact snippet of one engine file (usually one line: a sign, a
constant, an axis, an off-by-one, a missing projection). Every snippet must occur exactly once
in its file, and the mutated file must still compile, or the script stops before running
anything: a mutant whose code moved has to be updated, it is never skipped silently.

The tree is copied once (engine/, ui/, tests/, lessons/, pyproject.toml; assets/ linked), then
for each mutant that copy is copied again and mutated, and its tests run there with
`pytest -n 0 -x -q -p no:cacheprovider -m "not slow and not load"` (slow tests too for a
mutant marked so; hypothesis neither shrinks nor saves a failing example there). The working
tree is never touched. A mutant is killed when a test fails (or cannot even be collected), and
survives when they all pass. First each test set runs once unmutated: a set that already fails
kills nothing, so its mutants are not counted. Survivors are listed at the end, each with the
reason it is equivalent (the program computes the same) where the list gives one; the exit
status is 1 if any other mutant survived.
Run by hand, not by CI.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("engine", "ui", "tests", "lessons", "pyproject.toml")  # what the tests import or read
LINKED = ("assets",)  # read only: linked, not copied
IGNORED = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".hypothesis", "*.pyc")
# Loaded into each pytest run (-p): a failing hypothesis example is not shrunk (the verdict is
# all that counts here, and shrinking takes longer than finding it), nor saved.
PLUGIN = "mutants_hypothesis_profile"
PLUGIN_TEXT = """from hypothesis import Phase, settings

settings.register_profile("mutants", database=None,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile("mutants")
"""
TIMEOUT_S = 900  # one pytest run; a mutant that makes a test hang counts as killed


@dataclass(frozen=True)
class Mutant:
    """One planted bug: `original` (exact text, once in `file`) becomes `replacement`; `tests`
    (paths or node ids, from the root) should fail. slow: run the tests marked slow too.
    equivalent: why no test can kill it (the mutated program computes the same), if so."""

    name: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    slow: bool = False
    equivalent: str = ""


AD = "engine/autodiff/tensor.py"
LAYERS, LOSSES, OPTIM = "engine/nn/layers.py", "engine/nn/losses.py", "engine/nn/optim.py"
ATTR, ADV = "engine/explain/attribution.py", "engine/explain/adversarial.py"
LAND, HEALTH, LR = ("engine/explain/landscape.py", "engine/explain/health.py",
                    "engine/explain/lr_finder.py")
PRE, CONV = "engine/data/preprocess.py", "engine/cnn/layers.py"

T_AD = "tests/engine/autodiff/test_autodiff_ops.py"
T_LOSSES, T_OPTIM = "tests/engine/nn/test_losses.py", "tests/engine/nn/test_optim.py"
T_ATTR = "tests/engine/explain/test_attribution.py"
T_ADV = "tests/engine/explain/test_adversarial.py"
T_LAND, T_HEALTH = "tests/engine/explain/test_landscape.py", "tests/engine/explain/test_health.py"
T_BN = "tests/engine/ffnn/test_batchnorm.py"
T_CONV_VIEW, T_CNN = "tests/engine/explain/test_conv_view.py", "tests/engine/cnn/test_cnn.py"
T_PRE = "tests/engine/data/test_preprocess.py"

MUTANTS = (
    # --- autodiff: each op's backward ------------------------------------------------------
    Mutant("ad-divide-grad-sign", AD, "-g * quotient / other.data if other.requires_grad",
           "g * quotient / other.data if other.requires_grad", (T_AD,)),
    Mutant("ad-tanh-derivative", AD, "lambda: 1.0 - value * value)", "lambda: 1.0 - value)",
           (T_AD,)),
    Mutant("ad-log-softmax-axis", AD, "np.exp(out_data) * g.sum(axis=axis, keepdims=True)",
           "np.exp(out_data) * g.sum(axis=0, keepdims=True)", (T_AD,)),
    Mutant("ad-max-ties-not-shared", AD, "winners /= winners.sum(axis=axis, keepdims=True)",
           "winners /= 1", (T_AD,)),
    Mutant("ad-unbroadcast-stretched", AD,
           "if n == 1 and grad.shape[i] != 1)", "if n == 1 and grad.shape[i] != 1 and i > 0)",
           (T_AD,)),
    Mutant("ad-batch-norm-backward-term", AD,
           "                                          - xhat * (dxhat * xhat).sum(axis=0))",
           "                                          )", (T_BN,)),
    # --- nn: layers, losses, optimizers ---------------------------------------------------
    Mutant("nn-leaky-slope", LAYERS, "LEAKY_SLOPE = 0.01", "LEAKY_SLOPE = 0.1", (T_HEALTH,)),
    Mutant("nn-gelu-constant", LAYERS, "GELU_CUBIC = 0.044715", "GELU_CUBIC = 0.04715",
           (T_HEALTH,)),
    Mutant("nn-jax-tanh", LAYERS, "    tanh=jnp.tanh,", "    tanh=lambda x: jnp.tanh(1.05 * x),",
           (T_HEALTH,)),
    Mutant("nn-xavier-bound", LAYERS,
           "rng.uniform(-np.sqrt(3.0) * std, np.sqrt(3.0) * std,",
           "rng.uniform(-np.sqrt(2.0) * std, np.sqrt(2.0) * std,", (T_HEALTH,)),
    Mutant("nn-batch-variance-unbiased", LAYERS,
           "return mean, (centred * centred).mean(axis=0)",
           "return mean, (centred * centred).sum(axis=0) / (z.shape[0] - 1)", (T_BN,)),
    Mutant("nn-cross-entropy-sum", LOSSES, "one_hot).sum(axis=-1).mean()", "one_hot).sum()",
           (T_LOSSES,)),
    Mutant("nn-mse-class-mean", LOSSES, "one_hot) ** 2).sum(axis=-1).mean()",
           "one_hot) ** 2).mean(axis=-1).mean()", (T_LOSSES,)),
    Mutant("nn-momentum-dampened", OPTIM,
           "# Velocity: a running sum of past gradients, each older one damped by another factor "
           "beta.\n        velocity = tree_map(lambda v, g: beta * v + g,",
           "# Velocity: a running sum of past gradients, each older one damped by another factor "
           "beta.\n        velocity = tree_map(lambda v, g: beta * v + (1 - beta) * g,",
           (T_OPTIM,)),
    Mutant("nn-nesterov-no-lookahead", OPTIM, "p - learning_rate * (g + beta * v)",
           "p - learning_rate * v", (T_OPTIM,)),
    Mutant("nn-rmsprop-eps-outside-root", OPTIM, "g / (s + eps) ** 0.5", "g / (s ** 0.5 + eps)",
           (T_OPTIM,)),
    Mutant("nn-adam-count-off-by-one", OPTIM, 'count = state["count"] + 1',
           'count = state["count"] + 2', (T_OPTIM,)),
    # --- attribution ------------------------------------------------------------------------
    Mutant("attr-kernel-sigma-doubled", ATTR, "kernel = np.exp(-0.5 * (x / sigma) ** 2)",
           "kernel = np.exp(-0.5 * (x / (2 * sigma)) ** 2)", (T_ATTR,)),
    Mutant("attr-baseline-sigma-doubled", ATTR, "return gaussian_blur(image, blur_sigma)",
           "return gaussian_blur(image, 2 * blur_sigma)", (T_ATTR,)),
    Mutant("attr-explain-gradient-sign", ATTR, "vanilla = gradient(score, image[None])[0]",
           "vanilla = -gradient(score, image[None])[0]", (T_ATTR,)),
    Mutant("attr-gradient-x-input", ATTR, "return gradient(score, image[None])[0] * image",
           "return gradient(score, image[None])[0]", (T_ATTR,)),
    Mutant("attr-trapezoid-ends", ATTR, ".set(0.5 / steps)", ".set(1.0 / steps)", (T_ATTR,)),
    Mutant("attr-occlusion-divisor", ATTR, "jnp.maximum(covered, 1.0)",
           "jnp.maximum(covered, 2.0)", (T_ATTR,)),
    Mutant("attr-occlusion-last-start", ATTR, "range(0, side - patch + 1, stride)",
           "range(0, side - patch, stride)", (T_ATTR,)),
    # --- adversarial ------------------------------------------------------------------------
    Mutant("adv-pgd-projects-only-at-the-end", ADV,
           "return project(step(x), images, epsilon)\n\n"
           "    return jax.lax.fori_loop(0, steps, body, images)",
           "return step(x)\n\n"
           "    return project(jax.lax.fori_loop(0, steps, body, images), images, epsilon)",
           (T_ADV,)),
    Mutant("adv-pgd-step-size", ADV, "2.5 * epsilon / steps", "2.0 * epsilon / steps", (T_ADV,)),
    Mutant("adv-targeted-sign", ADV, "return picked.sum() if targeted",
           "return -picked.sum() if targeted", (T_ADV,)),
    Mutant("adv-clip-order", ADV,
           "jnp.clip(jnp.clip(images, originals - epsilon, originals + epsilon), 0.0, 1.0)",
           "jnp.clip(jnp.clip(images, 0.0, 1.0), originals - epsilon, originals + epsilon)",
           (T_ADV,),
           equivalent="clipping to one interval and then to another is the projection on their "
                      "intersection in either order when they overlap, and [0, 1] always holds "
                      "the original pixel, so they do"),
    # --- landscape --------------------------------------------------------------------------
    Mutant("land-job-loss-scaled", LAND, "values[plane.name] = np.concatenate(parts)",
           "values[plane.name] = np.concatenate(parts) * np.array([1.5, 1.0])", (T_LAND,)),
    Mutant("land-plane-loss-scaled", "engine/models/plane.py",
           "return jnp.stack([loss, (scores.argmax(axis=1) == y).mean()])",
           "return jnp.stack([1.5 * loss, (scores.argmax(axis=1) == y).mean()])", (T_LAND,)),
    Mutant("land-filter-axis", LAND, "axes = tuple(range(d.ndim - 1))",
           "axes = tuple(range(1, d.ndim))", (T_LAND,)),
    Mutant("land-line-backwards", LAND, "line = {name: np.asarray(final[name]) - job.initial[name]",
           "line = {name: job.initial[name] - np.asarray(final[name])", (T_LAND,)),
    Mutant("land-pca-centre-axis", LAND, "centred = moves - moves.mean(axis=0)",
           "centred = moves - moves.mean(axis=1, keepdims=True)", (T_LAND,)),
    # --- health and the learning-rate finder --------------------------------------------------
    Mutant("health-dead-strict", HEALTH, "np.all(values <= 0, axis=0)",
           "np.all(values < 0, axis=0)", (T_HEALTH,)),
    Mutant("health-tanh-threshold", HEALTH, "TANH_SATURATED = 0.97", "TANH_SATURATED = 0.9",
           (T_HEALTH,)),
    Mutant("health-sigmoid-tail", HEALTH, "(values < SIGMOID_TAIL) | (values > 1 - SIGMOID_TAIL)",
           "(values < SIGMOID_TAIL) | (values > 1 - 2 * SIGMOID_TAIL)", (T_HEALTH,)),
    Mutant("health-update-ratio-steps", HEALTH, "np.linalg.norm(a - b) / steps / np.linalg.norm(a)",
           "np.linalg.norm(a - b) / np.linalg.norm(a)", (T_HEALTH,)),
    Mutant("lr-smoothing-0.5", LR, "SMOOTHING = 0.9", "SMOOTHING = 0.5", (T_HEALTH,)),
    Mutant("lr-no-smoothing", LR, "out[i] = average / (1 - keep ** (i + 1))", "out[i] = value",
           (T_HEALTH,)),
    Mutant("lr-bias-correction-off-by-one", LR, "keep ** (i + 1))", "keep ** (i + 2))",
           (T_HEALTH,)),
    Mutant("lr-blowup-factor", LR, "BLOWUP = 4.0", "BLOWUP = 40.0", (T_HEALTH,)),
    # --- batch norm's statistics --------------------------------------------------------------
    Mutant("bn-population-unbiased", "engine/ffnn/model.py",
           'stats[f"mean{i}"], stats[f"var{i}"] = mean, var',
           'stats[f"mean{i}"], stats[f"var{i}"] = mean, var * z.shape[0] / (z.shape[0] - 1)',
           (T_BN,)),
    # --- the CNN's convolution, pooling and dropout ---------------------------------------------
    Mutant("cnn-same-padding-odd-before", CONV, "return total // 2, total - total // 2",
           "return total - total // 2, total // 2", (T_CNN,)),
    Mutant("cnn-im2col-offset-order", CONV,
           "        for i in range(kh)\n        for j in range(kw)\n    ]",
           "        for j in range(kw)\n        for i in range(kh)\n    ]", (T_CNN,)),
    Mutant("cnn-avg-pool-divisor", CONV, "return windows.mean(axis=(2, 4))",
           "return windows.sum(axis=(2, 4)) / 2", (T_CNN,)),
    Mutant("cnn-max-pool-last-maximum", CONV, "for offset in reversed(range(size * size - 1)):",
           "for offset in range(size * size - 1):", (T_CNN,)),
    Mutant("cnn-direct-avg-divisor", CONV, "return sum(phases) / len(phases)",
           "return sum(phases) / 2", (T_CNN,)),
    Mutant("cnn-dropout-at-evaluation", "engine/cnn/model.py",
           'return x @ params["dense_w"] + params["dense_b"], activations',
           'return (x if train else x * (1 - spec.dropout)) @ params["dense_w"] '
           '+ params["dense_b"], activations', (T_CNN,)),
    Mutant("conv-view-running-sum-order", "engine/explain/conv_view.py",
           "return np.cumsum(self.products.ravel())", "return np.cumsum(self.products.T.ravel())",
           (T_CONV_VIEW,)),
    Mutant("conv-view-kernel-entry-swapped", "engine/explain/conv_view.py",
           "padded[a:a + side, b:b + side]", "padded[b:b + side, a:a + side]", (T_CONV_VIEW,)),
    # --- preprocessing ---------------------------------------------------------------------
    Mutant("pre-centre-of-mass-axis", PRE, "rows = float(image.sum(axis=1) @",
           "rows = float(image.sum(axis=0) @", (T_PRE,)),
    Mutant("pre-shift-sign", PRE, "shift = (round(CENTRE[0] - com[0]), round(CENTRE[1] - com[1]))",
           "shift = (round(com[0] - CENTRE[0]), round(com[1] - CENTRE[1]))", (T_PRE,)),
    Mutant("pre-box-side", PRE, "BOX = 20  #", "BOX = 19  #", (T_PRE,)),
    Mutant("pre-paste-off-by-one", PRE, "top, left = (FIELD - h) // 2, (FIELD - w) // 2",
           "top, left = (FIELD - h) // 2 + 1, (FIELD - w) // 2", (T_PRE,)),
    Mutant("pre-paste-odd-margin-above", PRE, "top, left = (FIELD - h) // 2, (FIELD - w) // 2",
           "top, left = (FIELD - h + 1) // 2, (FIELD - w) // 2", (T_PRE,)),
    Mutant("pre-bbox-exclusive-end", PRE, "top, bottom, left, right = rows[0], rows[-1] + 1,",
           "top, bottom, left, right = rows[0], rows[-1],", (T_PRE,)),
)


# --- checking the list ---------------------------------------------------------------------

def problems(mutants: tuple[Mutant, ...], root: Path) -> list[str]:
    """Why some mutants cannot be planted in the tree at `root` (empty if all can): a snippet
    not found exactly once, a mutated file that does not compile, a test file that is missing,
    a name used twice."""
    found, names = [], set()
    for m in mutants:
        if m.name in names:
            found.append(f"{m.name}: the name is used twice")
        names.add(m.name)
        path = root / m.file
        if not path.is_file():
            found.append(f"{m.name}: {m.file} does not exist")
            continue
        text = path.read_text()
        count = text.count(m.original)
        if count != 1:
            found.append(f"{m.name}: its original text is found {count} times in {m.file}, "
                         f"not once: {m.original!r}")
            continue
        try:
            ast.parse(text.replace(m.original, m.replacement), m.file)  # parsed, never run
        except SyntaxError as error:
            found.append(f"{m.name}: the mutated {m.file} does not compile: {error}")
        found += [f"{m.name}: no test file {t}" for t in m.tests
                  if not (root / t.split("::")[0]).is_file()]
    return found


# --- running -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """One pytest run: its exit status, the first failing test (if any), seconds taken."""

    status: int | None  # None: timed out
    failure: str
    seconds: float

    @property
    def failed(self) -> bool:
        """A test failed, could not be collected, or hung (pytest's 1, "failed", and 2,
        "interrupted", which a collection error gives)."""
        return self.status is None or self.status in (1, 2)

    @property
    def broken(self) -> bool:
        """pytest itself was used wrongly (3-5: an internal error, a bad option, no tests)."""
        return not self.failed and self.status != 0


def snapshot(root: Path, into: Path) -> Path:
    """A copy of what the tests need from `root`, in the folder `into`."""
    into.mkdir()
    for name in COPIED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=IGNORED)
        else:
            shutil.copy2(source, into / name)
    for name in LINKED:
        (into / name).symlink_to(root / name, target_is_directory=True)
    (into / f"{PLUGIN}.py").write_text(PLUGIN_TEXT)
    return into


def run_tests(tree: Path, tests: tuple[str, ...], slow: bool, timeout: float = TIMEOUT_S
              ) -> Outcome:
    """pytest on `tests` in the tree at `tree`, stopping at the first failure."""
    marks = "not load" if slow else "not slow and not load"
    command = [sys.executable, "-m", "pytest", "-n", "0", "-x", "-q", "-p", "no:cacheprovider",
               "-p", PLUGIN, "-m", marks, *tests]
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=tree, capture_output=True, text=True,
                                timeout=timeout, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    except subprocess.TimeoutExpired:
        return Outcome(None, f"timed out after {timeout:.0f} s", time.perf_counter() - start)
    lines = (result.stdout + result.stderr).splitlines()
    test = next((line.split(" - ")[0] for line in lines if line.startswith(("FAILED ", "ERROR "))),
                "")
    error = next((line[1:].strip() for line in lines if line.startswith("E ")), "")
    failure = f"{test.split('::', 1)[-1]}: {error[:100]}" if test else ""
    if result.returncode not in (0, 1, 2):
        failure = "\n".join(lines[-15:])
    return Outcome(result.returncode, failure, time.perf_counter() - start)


def plant(base: Path, into: Path, mutant: Mutant) -> Path:
    """A copy of the snapshot `base` at `into` with `mutant` planted."""
    shutil.copytree(base, into, symlinks=True)
    path = into / mutant.file
    path.write_text(path.read_text().replace(mutant.original, mutant.replacement))
    return into


# --- the report ------------------------------------------------------------------------------

def report(results: dict[str, Outcome], mutants: dict[str, Mutant], skipped: list[str]) -> int:
    """Print the tally and the survivors; 1 if a mutant not known to be equivalent survived."""
    survivors = [name for name, outcome in results.items() if not outcome.failed]
    print(f"\nkilled {len(results) - len(survivors)} of {len(results)} mutants"
          + (f" ({len(skipped)} not run: their tests fail unmutated)" if skipped else ""))
    unexplained = 0
    for name in survivors:
        reason = mutants[name].equivalent
        unexplained += not reason
        print(f"  survived {name}: " + (f"equivalent: {reason}" if reason
                                        else "NOT EXPLAINED: a test should catch it"))
    for name, outcome in results.items():
        if outcome.failed and mutants[name].equivalent:
            print(f"  {name} is listed as equivalent but was killed: check its note")
    return 1 if unexplained or skipped else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run this mutant only (repeatable)")
    parser.add_argument("--tests", nargs="+", metavar="TEST",
                        help="run these test files or node ids instead of the mutants' own")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip running the tests unmutated first")
    args = parser.parse_args(argv)

    by_name = {m.name: m for m in MUTANTS}
    unknown = [name for name in args.only or () if name not in by_name]
    if unknown:
        parser.error(f"no mutant called {', '.join(unknown)}; --list shows them")
    trouble = problems(MUTANTS, ROOT)
    if trouble:
        print("The mutant list no longer fits the code; fix these entries first:", file=sys.stderr)
        print("\n".join(f"  {line}" for line in trouble), file=sys.stderr)
        return 2
    chosen = [by_name[name] for name in args.only] if args.only else list(MUTANTS)
    if args.tests:
        missing = [t for t in args.tests if not (ROOT / t.split("::")[0]).is_file()]
        if missing:
            parser.error(f"no test file {', '.join(missing)}")
        chosen = [Mutant(m.name, m.file, m.original, m.replacement, tuple(args.tests), m.slow,
                         m.equivalent) for m in chosen]
    if args.list:
        for m in chosen:
            print(f"{m.name:36} {m.file:34} {' '.join(m.tests)}" + (" (+slow)" if m.slow else "")
                  + (" [equivalent]" if m.equivalent else ""))
        return 0

    with tempfile.TemporaryDirectory(prefix="mutants-") as folder:
        base = snapshot(ROOT, Path(folder) / "base")
        broken: set[tuple[tuple[str, ...], bool]] = set()
        if not args.no_baseline:
            for tests, slow in dict.fromkeys((m.tests, m.slow) for m in chosen):
                outcome = run_tests(base, tests, slow)
                print(f"unmutated {' '.join(tests)}: "
                      f"{'FAILS: ' + outcome.failure if outcome.failed else 'passes'} "
                      f"({outcome.seconds:.0f} s)", flush=True)
                if outcome.status != 0:
                    broken.add((tests, slow))
        results: dict[str, Outcome] = {}
        skipped = []
        for m in chosen:
            if (m.tests, m.slow) in broken:
                skipped.append(m.name)
                continue
            tree = plant(base, Path(folder) / m.name, m)
            outcome = run_tests(tree, m.tests, m.slow)
            shutil.rmtree(tree)
            if outcome.broken:
                print(f"ERROR    {m.name}: pytest could not run its tests:\n{outcome.failure}",
                      file=sys.stderr)
                return 2
            results[m.name] = outcome
            verdict = "killed  " if outcome.failed else "SURVIVED"
            print(f"{verdict} {m.name:36} {outcome.seconds:5.0f} s  {outcome.failure}",
                  flush=True)
        return report(results, by_name, skipped)


if __name__ == "__main__":
    sys.exit(main())
