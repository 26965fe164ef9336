"""The hidden-layer projector: what a model's layer makes of many digits, flattened to 2-D by PCA.

Each digit becomes a point: its activations at a chosen layer (a hidden layer of the FFNN, a
block of the CNN, or the logits), projected on the two directions along which those activations
vary most (principal component analysis). Across a run's history, each snapshot's activations
are projected on the final model's axes, so the points move in one fixed frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.mnist import as_float
from engine.models.model import Model
from engine.nn.params import unflatten


def layer_names(model: Model) -> list[str]:
    """What `activations` can read, in order: e.g. ["hidden layer 1 (256 units)", "logits (10)"]
    for a 784-256-10 FFNN, ["block 1 (14x14x16)", "block 2 (7x7x32)", "logits (10)"] for a CNN."""
    return model.family.layer_names(model.architecture)


def activations(model: Model, images: np.ndarray, layer: int) -> np.ndarray:
    """The activations (N, units) of images (N, 28, 28) (uint8, or floats in [0, 1]) at layer
    `layer`, an index into layer_names(model). Raises IndexError for a layer not there."""
    last = len(layer_names(model)) - 1
    if not 0 <= layer <= last:
        raise IndexError(f"layer {layer} does not exist: choose 0 to {last}")
    return model.family.activations(model.params, as_float(np.asarray(images)),
                                    model.architecture, layer)


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class PCA:
    """Principal axes of a cloud of points: mean (d,), components (k, d) orthonormal rows,
    variances (k,) along each (largest first), and the fraction of the total variance each
    explains (k,)."""

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    explained: np.ndarray

    def project(self, points: np.ndarray) -> np.ndarray:
        """Coordinates (n, k) of points (n, d) along the components."""
        return (np.asarray(points, np.float64) - self.mean) @ self.components.T


def principal_axes(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(variances (r,) largest first, axes (r, d) orthonormal rows) of centred points (n, d).

    From the eigenvectors of the smaller of the two Gram matrices: the d x d covariance when
    d <= n (much faster than the SVD); otherwise the n x n matrix of the points' dot products,
    whose eigenvectors u give the axes X^T u / |X^T u| (a CNN block's thousands of values: the
    SVD took seconds, this a fraction of one; benchmark P1). When d > n, axes of no variance
    are left out (one is kept when all points are the same).
    """
    n, d = centred.shape
    if d <= n:
        eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / (n - 1))
        return np.clip(eigenvalues[::-1], 0, None), vectors[:, ::-1].T
    eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
    eigenvalues, vectors = eigenvalues[::-1], vectors[:, ::-1]
    kept = eigenvalues > eigenvalues[0] * 1e-12
    if not kept.any():  # every point the same: any direction, none with variance
        return np.zeros(1), np.eye(d)[:1]
    axes = (centred.T @ vectors[:, kept]).T  # (r, d), row i has norm sqrt(eigenvalue i)
    return eigenvalues[kept] / (n - 1), axes / np.linalg.norm(axes, axis=1, keepdims=True)


def pca(points: np.ndarray, k: int = 2) -> PCA:
    """The first k principal components of points (n, d), n >= 2.

    Each component's sign is fixed so its largest-magnitude entry is positive: the same data
    always gives the same picture. Raises ValueError for fewer than two points.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or len(points) < 2:
        raise ValueError(f"PCA needs at least two points (n, d), got shape {points.shape}")
    mean = points.mean(axis=0)
    variances, axes = principal_axes(points - mean)
    k = min(k, len(variances))
    components = axes[:k]
    biggest = np.abs(components).argmax(axis=1)
    components = components * np.sign(components[np.arange(k), biggest])[:, None]
    total = variances.sum()
    return PCA(mean, components, variances[:k],
               variances[:k] / total if total > 0 else np.zeros(k))


def at_snapshot(model: Model, flat: np.ndarray) -> Model:
    """The model with a run snapshot's parameters: flat (P,), every parameter flattened as by
    engine.nn.params.flat_parameters. Raises ParameterVectorError when flat does not fit the
    model."""
    return Model(model.family, model.architecture, unflatten(flat, model.params),
                 model.metadata)


def snapshot_points(model: Model, flat: np.ndarray, images: np.ndarray, layer: int,
                    axes: PCA) -> np.ndarray:
    """Points (N, 2): images (N, 28, 28) at `layer` of the model with a snapshot's parameters
    flat (P,), projected on `axes` (the final model's PCA: not refitted, so the picture of every
    snapshot shares one frame)."""
    return axes.project(activations(at_snapshot(model, flat), images, layer))
