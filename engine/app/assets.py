"""Where the committed assets live: the default models' files (built by engine.app.pretrain)."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"

# The default models, by name, and their files in MODELS_DIR.
DEFAULT_MODEL_FILES: dict[str, str] = {
    "ffnn-autodiff": "ffnn-autodiff.npz",
    "ffnn-jax": "ffnn-jax.npz",
    "cnn": "cnn.npz",
}


def default_model_path(name: str) -> Path:
    """Where the default model `name` (a DEFAULT_MODEL_FILES key) lives; KeyError if unknown."""
    return MODELS_DIR / DEFAULT_MODEL_FILES[name]
