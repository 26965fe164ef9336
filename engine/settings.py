"""Hosted-demo limits, read from environment variables (GLASSBOX_*) with sensible defaults.

A public demo runs on a few shared cores, so a training request over a limit is refused with
the reason instead of starving everyone else. Set e.g. `GLASSBOX_MAX_EPOCHS=100` to relax one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class SettingsError(ValueError):
    """An environment variable holds something that is not a positive whole number."""


@dataclass(frozen=True)
class Limits:
    """The largest training run one user may start.

    max_hidden_units: per hidden layer. max_hidden_layers: of a feed-forward net.
    max_filters: per conv block of a CNN.
    max_epochs, max_batch_size: of any run. max_concurrent_runs: training runs at once on this
    server (others wait in a queue). max_upload_mb: a model file's size.
    abandon_seconds: a run nobody has watched for this long (its page closed) is stopped.
    max_saved_runs_mb, max_saved_run_days: the saved-runs folder's caps (oldest removed first).
    """

    max_hidden_units: int = 1024
    max_hidden_layers: int = 4
    max_filters: int = 64
    max_epochs: int = 50
    max_batch_size: int = 1024
    max_concurrent_runs: int = 2
    max_upload_mb: int = 5  # = server.maxUploadSize in .streamlit/config.toml
    abandon_seconds: int = 30
    max_saved_runs_mb: int = 256
    max_saved_run_days: int = 7


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


def limits() -> Limits:
    """The limits in force: each field from GLASSBOX_<FIELD NAME IN CAPITALS>, else its default."""
    defaults = Limits()
    return Limits(**{
        name: positive_int_from_env(ENV_PREFIX + name.upper(), getattr(defaults, name))
        for name in Limits.__dataclass_fields__
    })


def run_length_problems(epochs: int, batch_size: int, limits: Limits) -> list[str]:
    """Why a run this long, with batches this big, may not start here (empty if it may)."""
    problems = []
    if epochs > limits.max_epochs:
        problems.append(f"{epochs} epochs is over this server's limit of {limits.max_epochs}.")
    if batch_size > limits.max_batch_size:
        problems.append(f"a batch of {batch_size} is over this server's limit of "
                        f"{limits.max_batch_size}.")
    return problems
