"""Hosted-demo limits, read from environment variables (GLASSBOX_*) with sensible defaults.

A public demo runs on a few shared cores, so a training request over a limit is refused with
the reason instead of starving everyone else. Set e.g. `GLASSBOX_MAX_EPOCHS=100` to relax one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """An environment variable holds something that is not a positive whole number."""


@dataclass(frozen=True)
class Limits:
    """The largest training run one user may start.

    max_hidden_units: per hidden layer. max_hidden_layers: of a feed-forward net.
    max_filters: per conv block of a CNN. max_parameters: weights and biases of any one model,
    so that its file (4 bytes a parameter) fits max_upload_mb and can be uploaded again.
    max_epochs, max_batch_size: of any run. max_concurrent_runs: training runs at once on this
    server (others wait in a queue). max_upload_mb: a model file's size.
    abandon_seconds: a run nobody has watched for this long (its page closed) is stopped.
    max_saved_runs_mb, max_saved_run_days: the saved-runs folder's caps (oldest removed first).
    max_landscape_grid: points a side of a loss-landscape grid; max_landscape_digits: the
    evaluation subset it is computed on.
    max_step_mb: the activations of one CNN training step (or evaluation batch), estimated from
    the architecture and batch size: a 3-block CNN of 64 filters with pooling trains in batches
    of up to 156 (at 128: 209 MB estimated, 175 MB by XLA's analysis); without pooling its
    evaluation batch alone would take about 1 GB.
    """

    max_hidden_units: int = 1024
    max_hidden_layers: int = 8
    max_filters: int = 64
    max_parameters: int = 1_000_000  # 4 MB of float32: its file fits the 5 MB upload cap
    max_epochs: int = 50
    max_batch_size: int = 1024
    max_concurrent_runs: int = 2
    max_upload_mb: int = 5  # = server.maxUploadSize in .streamlit/config.toml
    abandon_seconds: int = 30
    max_saved_runs_mb: int = 256
    max_saved_run_days: int = 7
    max_landscape_grid: int = 41
    max_landscape_digits: int = 2000
    max_step_mb: int = 256  # two runs at once stay within the server's 1 GB (M2)


ENV_PREFIX = "GLASSBOX_"


def positive_int_from_env(name: str, default: int) -> int:
    """The environment variable `name` as a positive int, or `default` when it is unset."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a whole number") from None
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}")
    return value


# A model file beyond its float32 parameters: zip and .npy headers, metadata with the run's
# history; measured under 0.1 MB (tests/pages/test_hostile_inputs.py builds the largest
# model's file).
MODEL_FILE_OVERHEAD_BYTES = 2**20
BYTES_PER_PARAMETER = 4  # float32


def limits() -> Limits:
    """The limits in force: each field from GLASSBOX_<FIELD NAME IN CAPITALS>, else its default.

    Raises SettingsError for a value that is not a positive whole number, or for
    max_parameters so large that the largest model's file would be over max_upload_mb.
    """
    defaults = Limits()
    chosen = Limits(**{
        name: positive_int_from_env(ENV_PREFIX + name.upper(), getattr(defaults, name))
        for name in Limits.__dataclass_fields__
    })
    largest_file = chosen.max_parameters * BYTES_PER_PARAMETER + MODEL_FILE_OVERHEAD_BYTES
    if largest_file > chosen.max_upload_mb * 2**20:
        raise SettingsError(f"{ENV_PREFIX}MAX_PARAMETERS={chosen.max_parameters:,} allows model "
                            f"files of {largest_file / 2**20:.1f} MB, over "
                            f"{ENV_PREFIX}MAX_UPLOAD_MB={chosen.max_upload_mb}: such a model "
                            f"could be saved but never uploaded again.")
    return chosen


def parameter_count(param_shapes: Mapping[str, tuple[int, ...]]) -> int:
    """How many numbers a model with these parameter shapes ({name: shape}) holds."""
    return sum(math.prod(shape) for shape in param_shapes.values())


def parameter_problems(param_shapes: Mapping[str, tuple[int, ...]], limits: Limits
                       ) -> list[str]:
    """Why a model with these parameter shapes ({name: shape}) may not be trained here (empty
    if it may): its file must fit the model-upload cap."""
    count = parameter_count(param_shapes)
    if count <= limits.max_parameters:
        return []
    return [f"A model of {count:,} weights and biases is over this server's limit of "
            f"{limits.max_parameters:,} (its file must fit the {limits.max_upload_mb} MB "
            f"upload cap)."]


def run_length_problems(epochs: int, batch_size: int, limits: Limits) -> list[str]:
    """Why a run this long, with batches this big, may not start here (empty if it may)."""
    problems = []
    if epochs > limits.max_epochs:
        problems.append(f"{epochs} epochs is over this server's limit of {limits.max_epochs}.")
    if batch_size > limits.max_batch_size:
        problems.append(f"a batch of {batch_size} is over this server's limit of "
                        f"{limits.max_batch_size}.")
    return problems
