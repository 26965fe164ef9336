"""The default models, ready to predict, and `python -m engine.app.predict IMAGE [IMAGE ...]`.

Every model, default or trained in a session, is an `engine.models.model.Model`: its family,
architecture, parameters and metadata, with `predict_proba(images (n, 28, 28)) -> (n, 10)`. The
default models are the files engine.app.pretrain builds in assets/models/ (engine.app.assets). The
command line runs image files through the same preprocessing as the sketch lab and prints one
JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.app.assets import DEFAULT_MODEL_FILES, default_model_path
from engine.data.preprocess import FIELD, Preprocessed, PreprocessError, load_image, preprocess
from engine.models import checkpoint
from engine.models.files import model_from_bytes
from engine.models.model import Model

# The default models the sketch lab and the command line use, in the order they are shown.
DEFAULT_MODELS: dict[str, str] = {
    "ffnn-autodiff": "FFNN · our autodiff",
    "ffnn-jax": "FFNN · jax.grad",
    "cnn": "CNN · our convolution",
}


class ModelUnavailableError(RuntimeError):
    """A default model's file is missing or unreadable; str() says how to rebuild it."""


def warmed_up(model: Model) -> Model:
    """The model after one prediction of a blank (1, 28, 28) image: the compile is paid now,
    not at the learner's first stroke."""
    model.predict_proba(np.zeros((1, FIELD, FIELD), np.float32))
    return model


def load_default_model(name: str) -> Model:
    """The default model `name` (a DEFAULT_MODELS key), loaded and warmed up.

    Raises ModelUnavailableError when its file is missing or unreadable.
    """
    if name not in DEFAULT_MODEL_FILES or not default_model_path(name).exists():
        raise ModelUnavailableError(f"The default model {name!r} is not built yet: run "
                                    f"`python -m engine.app.pretrain {name}`.")
    path = default_model_path(name)
    try:
        return warmed_up(model_from_bytes(path.read_bytes()))
    except (OSError, checkpoint.CheckpointError) as error:
        raise ModelUnavailableError(f"The default model file {path.name} cannot be used "
                                    f"({error}); rebuild it with `python -m engine.app.pretrain "
                                    f"{name}`.") from None


def load_default_models() -> tuple[dict[str, Model], dict[str, str]]:
    """({name: Model} of every default model that loads, {name: why not} of the others)."""
    models, missing = {}, {}
    for name in DEFAULT_MODELS:
        try:
            models[name] = load_default_model(name)
        except ModelUnavailableError as error:
            missing[name] = str(error)
    return models, missing


def probabilities_of(models: Mapping[str, Model], image: np.ndarray) -> dict[str, np.ndarray]:
    """{name: probabilities (10,)} of one preprocessed image (28, 28) under each model."""
    batch = np.asarray(image, np.float32)[None]
    return {name: model.predict_proba(batch)[0] for name, model in models.items()}


def classify(models: Mapping[str, Model], image: np.ndarray
             ) -> tuple[Preprocessed, dict[str, np.ndarray]]:
    """A raw image (H, W[, 3 or 4]) through the sketch lab's preprocessing and every model.

    Raises a PreprocessError subclass when the image holds no readable digit.
    """
    preprocessed = preprocess(image)
    return preprocessed, probabilities_of(models, preprocessed.final)


def prediction_record(file: str, probabilities: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The JSON-ready line for one file: each model's top guess and its ten probabilities."""
    return {"file": file, "models": {
        name: {"digit": int(np.argmax(p)), "probabilities": [round(float(v), 6) for v in p]}
        for name, p in probabilities.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    """Classify each image file; 0 if every one was read, 1 if any could not be."""
    parser = argparse.ArgumentParser(
        prog="python -m engine.app.predict",
        description="Classify digit images (a canvas export, a photo of a digit on paper, an "
                    "MNIST-style 28x28) with the default models; one JSON object per line.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", type=Path)
    args = parser.parse_args(argv)

    models, missing = load_default_models()
    for reason in missing.values():
        print(f"warning: {reason}", file=sys.stderr)
    if not models:
        print("error: no default model could be loaded.", file=sys.stderr)
        return 2
    failures = 0
    for path in args.images:
        try:
            _, probabilities = classify(models, load_image(path.read_bytes()))
        except OSError as error:
            failures += 1
            print(f"{path}: cannot read the file ({error.strerror}).", file=sys.stderr)
            continue
        except PreprocessError as error:
            failures += 1
            print(f"{path}: {error}", file=sys.stderr)
            continue
        print(json.dumps(prediction_record(str(path), probabilities)), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
