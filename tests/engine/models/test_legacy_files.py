"""Model files and saved runs written by an earlier version (commit 9b57a3f, before the engine
moved into folders and models carried a family) still load, read back the same way, and
predict the same probabilities. The files in tests/fixtures/legacy are never regenerated."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT

from engine.data.mnist import as_float, embedded_split
from engine.models.files import model_from_bytes
from engine.models.registry import FAMILIES
from engine.training import runs
from engine.training.service import RunService, read_run_file
from engine.training.status import RunStatus

LEGACY = ROOT / "tests" / "fixtures" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())
FILES = EXPECTED["files"]
RUN_FILES = [name for name, entry in FILES.items() if "run" in entry]


@pytest.fixture(scope="module")
def probe() -> np.ndarray:
    """The digits the expected probabilities were computed on (3, 28, 28)."""
    return as_float(embedded_split().x_test[:3])


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_legacy_file_is_the_one_written_then(name: str) -> None:
    assert hashlib.sha256((LEGACY / name).read_bytes()).hexdigest() == FILES[name]["sha256"]


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_legacy_model_file_loads_into_its_family(name: str, probe: np.ndarray) -> None:
    expected = FILES[name]
    model = model_from_bytes((LEGACY / name).read_bytes())
    assert model.family is FAMILIES[expected["kind"]]
    assert model.describe() == expected["describe"]
    assert sorted(model.metadata) == expected["metadata_keys"]
    assert model.usable == expected["usable"]
    assert {k: list(np.shape(v)) for k, v in model.params.items()} == expected["params"]
    np.testing.assert_allclose(model.predict_proba(probe), expected["probabilities"], atol=1e-5)


@pytest.mark.parametrize("name", RUN_FILES)
def test_a_legacy_saved_run_reads_back_whole(name: str, probe: np.ndarray) -> None:
    expected = FILES[name]["run"]
    event = read_run_file((LEGACY / name).read_bytes(), FILES[name]["kind"])
    assert event.status is RunStatus(expected["status"])
    assert (event.step, event.total_steps) == (expected["step"], expected["total_steps"])
    history = event.history
    lengths = {field: len(getattr(history, field)) for field in expected["history_lengths"]}
    assert lengths == expected["history_lengths"]
    assert list(history.eval_steps) == expected["eval_steps"]
    assert list(history.snapshot_steps) == expected["snapshot_steps"]
    for snapshot in history.snapshots:
        assert list(snapshot.filters.shape) == expected["snapshot_shapes"]["filters"]
        assert list(snapshot.probabilities.shape) == expected["snapshot_shapes"]["probabilities"]
    np.testing.assert_allclose(event.model.predict_proba(probe), FILES[name]["probabilities"],
                               atol=1e-5)


@pytest.mark.parametrize("name", RUN_FILES)
def test_a_legacy_run_link_opens_in_its_room_only(name: str, tmp_path: Path) -> None:
    token = runs.new_run_id()
    shutil.copy(LEGACY / name, runs.run_path(token, tmp_path))
    service = RunService(slots=1, abandon_seconds=60, folder=tmp_path)
    kind = FILES[name]["kind"]
    restored = service.restore(token, kind)
    assert restored.view().status is RunStatus(FILES[name]["run"]["status"])
    assert restored.view().model is not None
    other = next(k for k in FAMILIES if k != kind)
    with pytest.raises(runs.RunNotFoundError, match="another room"):
        service.restore(token, other)
