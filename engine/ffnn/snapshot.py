"""What a feed-forward training run records of its model at each evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.explain.health import LayerHealth
from engine.ffnn.model import LayerDifference


@dataclass(frozen=True)
class Snapshot:
    """What a training run shows of its model at an evaluation.

    weights: the first layer's weights as images (units, 28, 28), what each hidden unit looks
    for (with no hidden layer, each class's template). twin: the twin-engine check on a fixed
    batch at these parameters, if one was asked for. flat: every parameter, flattened
    (engine.nn.params.flat_parameters), for the training path's PCA and the update ratios.
    health: the layers' statistics (engine.explain.health) on a fixed batch, if one was asked for.
    """

    weights: np.ndarray
    twin: list[LayerDifference] | None = None
    flat: np.ndarray | None = None
    health: LayerHealth | None = None


