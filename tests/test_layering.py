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


# --- no import cycles ------------------------------------------------------------------------

def module_path(name: str) -> Path | None:
    """The file of module `name` ("engine.models.model"), or None for no file of ours."""
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    """Our files that `path` imports, anywhere in it (an import inside a function counts):
    `from engine.cnn import model` names engine/cnn/model.py, `from engine.cnn import logits`
    engine/cnn/__init__.py."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(module_path(n) or module_path(node.module) for n in names)
        elif isinstance(node, ast.Import):
            found.update(module_path(alias.name) for alias in node.names)
    return {f for f in found if f is not None and f != path}


def cycles(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    """Every set of files that import each other round a loop (Tarjan's strongly connected
    components with more than one file)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    found: list[list[Path]] = []

    def visit(v: Path) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("folder", ["engine", "ui"])
def test_no_import_cycle(folder: str) -> None:
    files = sorted((ROOT / folder).rglob("*.py"))
    graph = {f: imported_files(f) for f in files}
    assert sum(len(edges) for edges in graph.values()) > len(files) // 2  # the graph was read
    assert cycles(graph) == [], "files that import each other in a loop"


def test_the_cycle_check_sees_a_cycle(tmp_path: Path) -> None:
    a, b, c = (tmp_path / name for name in ("a.py", "b.py", "c.py"))
    assert cycles({a: {b}, b: {c}, c: {a}}) == [sorted([a, b, c])]
    assert cycles({a: {b}, b: {c}, c: set()}) == []


def test_imports_are_read_as_files() -> None:
    models = ROOT / "engine" / "models"
    assert imported_files(models / "files.py") >= {models / "model.py", models / "registry.py",
                                                   models / "checkpoint.py"}


# --- families, not switches ------------------------------------------------------------------

KIND_NAMES = {"ffnn", "cnn"}  # the kinds model files store (engine.models.registry)


def kind_comparisons(path: Path) -> list[int]:
    """Lines of `path` that compare something with a model kind's name or a MODEL_KIND."""
    def is_kind(node: ast.AST) -> bool:
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(map(is_kind, node.elts))
        return (isinstance(node, ast.Constant) and node.value in KIND_NAMES) or (
            isinstance(node, ast.Attribute | ast.Name)
            and getattr(node, "attr", getattr(node, "id", None)) == "MODEL_KIND")

    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Compare) and any(map(is_kind, [node.left, *node.comparators]))]


FEATURE_FILES = sorted(p for folder in ("engine", "ui", "pages")
                       for p in (ROOT / folder).rglob("*.py")
                       if "models" not in p.relative_to(ROOT).parts)


@pytest.mark.parametrize("path", FEATURE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_feature_switches_on_a_model_kind(path: Path) -> None:
    assert kind_comparisons(path) == [], "ask the model's family (engine.models.family)"


def test_the_kind_check_sees_a_switch(tmp_path: Path) -> None:
    switch = tmp_path / "switch.py"
    switch.write_text('if model.kind == "cnn":\n    pass\nok = kind in ("ffnn",)\n'
                      "same = kind != ffnn.MODEL_KIND\n")
    assert kind_comparisons(switch) == [1, 3, 4]


def test_the_engine_tree_is_a_short_table_of_contents() -> None:
    entries = [p.name for p in (ROOT / "engine").iterdir() if p.name not in ("__init__.py",
                                                                             "__pycache__")]
    assert 5 <= len(entries) <= 12, sorted(entries)
    assert all((ROOT / "engine" / name).is_dir() for name in entries), "modules live in folders"


# --- the README's map ------------------------------------------------------------------------

def readme_map(top: str) -> dict[str, str]:
    """{subfolder: its description} under `top` ("engine", "ui") in the README's "How it is
    built" map; "(top)" describes the modules at the top of the folder itself."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## How it is built", 1)[1].split("```", 2)[1]
    folders: dict[str, str] = {}
    section = current = None
    for line in block.splitlines():
        if line and not line.startswith(" "):
            section, current = line.split()[0].rstrip("/"), None
        elif line.startswith("  ") and not line.startswith("   ") and section == top:
            current = line.split()[0].rstrip("/")
            folders[current] = line.split(None, 1)[1] if len(line.split()) > 1 else ""
        elif line.startswith(" " * 19) and current is not None and section == top:
            folders[current] += " " + line.strip()
    return folders


def named_modules(text: str) -> set[str]:
    return set(text.replace(",", " ").replace("(", " ").replace(")", " ").split())


@pytest.mark.parametrize("top", ["engine", "ui"])
def test_the_readme_map_names_every_folder_and_module(top: str) -> None:
    described = readme_map(top)
    folders = {p.name for p in (ROOT / top).iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert set(described) - {"(top)"} == folders
    places = {**{name: ROOT / top / name for name in folders}, "(top)": ROOT / top}
    for folder, text in described.items():
        modules = {p.stem for p in places[folder].glob("*.py") if p.stem != "__init__"}
        assert modules <= named_modules(text), f"{top}/{folder}: the README does not name " \
                                               f"{modules - named_modules(text)}"


def test_the_tests_mirror_the_tree() -> None:
    """tests/engine/<folder> for every engine folder (and nothing else), tests/ui and
    tests/pages for the Streamlit side; at the top of tests/ only this architecture test."""
    engine_folders = {p.name for p in (ROOT / "engine").iterdir()
                      if p.is_dir() and p.name != "__pycache__"}
    tested = {p.name for p in (ROOT / "tests" / "engine").iterdir() if p.is_dir()
              and p.name != "__pycache__"}
    assert tested == engine_folders
    assert all(any((ROOT / "tests" / "engine" / name).glob("test_*.py")) for name in tested)
    assert [p.name for p in (ROOT / "tests").glob("test_*.py")] == ["test_layering.py"]
    assert any((ROOT / "tests" / "ui").glob("test_*.py"))
    assert any((ROOT / "tests" / "pages").glob("test_page*.py"))
