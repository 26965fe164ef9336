"""A model's parameters as one flat vector and back: for weight histories, paths and planes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

Params = Mapping[str, Any]  # a model's flat {name: array}


class ParameterVectorError(ValueError):
    """A flat vector whose length does not fit the parameters it should be cut into."""


def flat_parameters(params: Params) -> np.ndarray:
    """All parameters as one float32 vector (P,), arrays in sorted name order, each raveled."""
    return np.concatenate([np.ravel(np.asarray(params[name], np.float32))
                           for name in sorted(params)])


def unflatten(vector: np.ndarray, like: Params) -> dict[str, np.ndarray]:
    """Inverse of `flat_parameters`: the vector (P,) cut into arrays shaped as `like`'s.

    Raises ParameterVectorError when the vector's length is not the parameters' count."""
    shapes = {name: np.shape(like[name]) for name in sorted(like)}
    sizes = [int(np.prod(shape)) for shape in shapes.values()]
    if sum(sizes) != len(vector):
        raise ParameterVectorError(f"a vector of {len(vector)} numbers does not fit parameters "
                                   f"of {sum(sizes)}")
    pieces = np.split(np.asarray(vector, np.float32), np.cumsum(sizes)[:-1])
    return {name: piece.reshape(shape)
            for (name, shape), piece in zip(shapes.items(), pieces, strict=True)}
