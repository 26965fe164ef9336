"""What a CNN training run records of its model at each evaluation, and a saved run's record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data.mnist import N_CLASSES
from engine.explain.health import LayerHealth


@dataclass(frozen=True)
class Snapshot:
    """What the net looked like at one evaluation: first-layer filters (F, k, k) and, when a
    digit to follow was given, its probabilities for that digit (10,). flat: every parameter,
    flattened (engine.nn.params.flat_parameters), for the training path's PCA and the update
    ratios. health: the layers' statistics (engine.explain.health) on a fixed batch, if asked for.
    Neither flat nor health is saved with a run: None after a restore."""

    filters: np.ndarray
    probabilities: np.ndarray | None
    flat: np.ndarray | None = None
    health: LayerHealth | None = None

    def to_record(self) -> dict[str, Any]:
        """JSON-ready, for a saved run (a few KB: the scrubber comes back with the run)."""
        return {"filters": np.asarray(self.filters, np.float64).round(6).tolist(),
                "probabilities": None if self.probabilities is None else
                np.asarray(self.probabilities, np.float64).round(6).tolist()}

    @classmethod
    def from_record(cls, record: Any) -> Snapshot:
        """Inverse of `to_record`; ValueError for anything that is not one (a record is input)."""
        filters = np.asarray(record["filters"], np.float32)
        probabilities = record["probabilities"]
        if probabilities is not None:
            probabilities = np.asarray(probabilities, np.float32)
            if probabilities.shape != (N_CLASSES,) or not ((probabilities >= 0)
                                                          & (probabilities <= 1)).all():
                raise ValueError("a snapshot's probabilities are not ten in [0, 1]")
        if filters.ndim != 3 or filters.shape[1] != filters.shape[2] or not np.isfinite(
                filters).all():
            raise ValueError("a snapshot's filters are not (F, k, k) finite numbers")
        return cls(filters, probabilities)


