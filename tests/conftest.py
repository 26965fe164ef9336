"""Fixtures shared by every test file: a private runs folder, a fake clock, the default models."""

from pathlib import Path

import pytest
from helpers import FakeClock

from engine.app.predict import DEFAULT_MODELS, load_default_models
from engine.training import runs


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of this test's own for saved training runs (engine.training.runs reads it from the
    environment), so no test sees another's runs or leaves any behind."""
    folder = tmp_path / "runs"
    monkeypatch.setenv(runs.RUNS_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says so: time-outs without waiting."""
    return FakeClock()


@pytest.fixture(scope="session")
def defaults() -> dict:
    """Every default model ({slot: Model}), loaded once for the whole test run."""
    models, missing = load_default_models()
    assert set(models) == set(DEFAULT_MODELS), missing
    return models
