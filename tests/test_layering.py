"""The architecture's import arrows: engine/ is pure computation, pages never imported back."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_ENGINE = {"streamlit", "plotly", "streamlit_drawable_canvas", "ui", "pages"}


def imported_top_level_modules(path: Path) -> set[str]:
    """Top-level package names imported anywhere in the file (including inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


ENGINE_FILES = sorted((ROOT / "engine").rglob("*.py"))
NON_PAGE_FILES = sorted(
    p for folder in ("engine", "ui", "benchmarks", "scripts") for p in (ROOT / folder).rglob("*.py")
)


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_imports_no_ui_library(path: Path) -> None:
    assert not imported_top_level_modules(path) & FORBIDDEN_IN_ENGINE


@pytest.mark.parametrize("path", NON_PAGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_imports_pages(path: Path) -> None:
    assert "pages" not in imported_top_level_modules(path)


def test_the_layering_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import streamlit as st\n    from plotly import graph_objects\n")
    assert imported_top_level_modules(bad) >= {"streamlit", "plotly"}


IMPORTABLE = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for folder in ("engine", "ui") for p in (ROOT / folder).rglob("*.py"))

SWITCH_INTERVAL_AFTER = """
import importlib, sys
before = sys.getswitchinterval()
for name in sys.argv[1:]:
    importlib.import_module(name)
print(before, sys.getswitchinterval())
"""


def switch_interval_around(code: str, *modules: str) -> tuple[float, float]:
    """sys.getswitchinterval() before and after `code` runs in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", code, *modules], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[-2]), float(out[-1])


@pytest.mark.slow
def test_importing_any_module_changes_no_process_wide_setting() -> None:
    before, after = switch_interval_around(SWITCH_INTERVAL_AFTER, *IMPORTABLE)
    assert len(IMPORTABLE) > 20 and "ui.training" in IMPORTABLE
    assert after == before, "an import changed sys.setswitchinterval"


def test_the_setting_check_sees_a_change() -> None:
    code = SWITCH_INTERVAL_AFTER + "from engine.app.tuning import tune_server\ntune_server()\n" \
        "print(before, sys.getswitchinterval())\n"
    before, after = switch_interval_around(code)
    assert after != before
