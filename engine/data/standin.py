"""A stand-in for full MNIST where its files cannot be had: 60,000 shifted and elastically
distorted copies of the embedded TRAINING digits (the test digits are never used), seeded.

Each copy is its source digit resampled through a smooth random displacement field (Simard et
al. 2003: uniform noise in [-1, 1] per pixel, Gaussian-filtered, scaled by `alpha`) plus one
random sub-pixel shift for the whole digit, read off by bilinear interpolation. Its test half is
the embedded test digits, untouched, so a model trained on it is judged on real unseen digits.
"""

from __future__ import annotations

import numpy as np

from engine.data.mnist import Dataset, Mnist, Split, embedded_split, full_mnist_split

STANDIN_SIZE = 60_000  # as many as full MNIST's training digits
STANDIN_CHUNK = 2_000  # digits distorted at once: ~30 MB of float32 fields, not 1.4 GB
ALPHA = 34.0  # Simard et al.'s displacement scale for MNIST
SIGMA = 4.0  # and their smoothing width, in pixels
MAX_SHIFT = 2.0  # pixels, each axis, the same for the whole digit


def standin_title(n_train: int, size: int = STANDIN_SIZE) -> str:
    """The stand-in's name wherever a figure or a page shows it."""
    return f"stand-in: {size:,} distorted copies of the {n_train:,} embedded training digits"


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian weights (2r + 1,), r = ceil(3 sigma), float32."""
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum()).astype(np.float32)


def blur_matrix(side: int, sigma: float) -> np.ndarray:
    """(side, side) float32 B with B @ v = v (side,) filtered by a Gaussian of width sigma,
    zeros beyond the border: row i holds the kernel centred on i."""
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    offsets = np.arange(side)[None, :] - np.arange(side)[:, None] + radius
    inside = (offsets >= 0) & (offsets < len(kernel))
    return np.where(inside, kernel[np.clip(offsets, 0, len(kernel) - 1)], 0).astype(np.float32)


def blurred(fields: np.ndarray, sigma: float) -> np.ndarray:
    """fields (N, H, W) filtered by a Gaussian of width sigma along H and W (it is separable:
    one small matrix product per axis), zeros beyond the border. Same shape, float32."""
    rows, cols = blur_matrix(fields.shape[1], sigma), blur_matrix(fields.shape[2], sigma)
    return rows @ fields @ cols.T


def displacement_fields(rng: np.random.Generator, n: int, side: int, alpha: float,
                        sigma: float, max_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx), each (n, side, side) float32: where each output pixel reads from, relative to
    itself. A smooth elastic part (alpha x blurred uniform noise) plus one shift per digit."""
    noise = rng.uniform(-1, 1, (2, n, side, side)).astype(np.float32)
    shift = rng.uniform(-max_shift, max_shift, (2, n, 1, 1)).astype(np.float32)
    dy, dx = (alpha * blurred(part, sigma) + offset for part, offset in zip(noise, shift,
                                                                            strict=True))
    return dy, dx


def bilinear_sample(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """images (N, H, W) read at (row + dy, column + dx) by bilinear interpolation, 0 outside.

    images: any numeric dtype; dy, dx (N, H, W) float. Returns float32 (N, H, W).
    """
    n, h, w = images.shape
    # Zeros around the image are what lies outside; the flat view gathers in one call per corner.
    padded = np.pad(images.astype(np.float32), ((0, 0), (1, 1), (1, 1))).reshape(n, -1)
    rows = np.clip(np.arange(h, dtype=np.float32)[:, None] + dy + 1, 0, h + 1 - 1e-3)
    cols = np.clip(np.arange(w, dtype=np.float32)[None, :] + dx + 1, 0, w + 1 - 1e-3)
    top, left = np.floor(rows), np.floor(cols)
    down, right = rows - top, cols - left
    corner = (top.astype(np.intp) * (w + 2) + left.astype(np.intp)).reshape(n, -1)

    def at(offset: int) -> np.ndarray:
        return np.take_along_axis(padded, corner + offset, axis=1).reshape(n, h, w)

    return ((1 - down) * ((1 - right) * at(0) + right * at(1))
            + down * ((1 - right) * at(w + 2) + right * at(w + 3)))


def distorted(images: np.ndarray, rng: np.random.Generator, *, alpha: float = ALPHA,
              sigma: float = SIGMA, max_shift: float = MAX_SHIFT) -> np.ndarray:
    """Each uint8 image (N, 28, 28) shifted and elastically distorted its own way: uint8."""
    dy, dx = displacement_fields(rng, len(images), images.shape[1], alpha, sigma, max_shift)
    return np.clip(np.rint(bilinear_sample(images, dy, dx)), 0, 255).astype(np.uint8)


def standin_sources(n_train: int, size: int = STANDIN_SIZE, seed: int = 0) -> np.ndarray:
    """Which training digit each of `size` copies is made from (size,) int: every digit as often
    as the others (within one), in a seeded shuffled order."""
    rng = np.random.default_rng([seed, 0])
    return rng.permutation(np.resize(np.arange(n_train), size))


def standin_mnist(split: Split, *, size: int = STANDIN_SIZE, seed: int = 0,
                  alpha: float = ALPHA, sigma: float = SIGMA, max_shift: float = MAX_SHIFT
                  ) -> Mnist:
    """Full MNIST's shape from split's training digits only: `size` distorted copies of
    split.x_train (uint8 (size, 28, 28)) and their labels as the training half, split's test
    digits as the test half. The same seed gives the same bytes. Distorts STANDIN_CHUNK digits
    at a time, so memory stays at the result plus one chunk's fields."""
    if size < 1:
        raise ValueError(f"the stand-in needs at least one digit, got {size}")
    sources = standin_sources(len(split.x_train), size, seed)
    rng = np.random.default_rng([seed, 1])
    images = np.empty((size, *split.x_train.shape[1:]), np.uint8)
    for start in range(0, size, STANDIN_CHUNK):
        chosen = sources[start:start + STANDIN_CHUNK]
        images[start:start + len(chosen)] = distorted(split.x_train[chosen], rng, alpha=alpha,
                                                      sigma=sigma, max_shift=max_shift)
    return Mnist(images, split.y_train[sources].copy(), split.x_test, split.y_test)


def standin_dataset(size: int = STANDIN_SIZE, seed: int = 0) -> Dataset:
    """The stand-in made from the embedded split, under full MNIST's split: the first
    size - 5,000 copies to train on (55,000), the last 5,000 for validation, the embedded 1,000
    test digits to test on; named as such."""
    split = embedded_split()
    mnist = standin_mnist(split, size=size, seed=seed)
    return Dataset(standin_title(len(split.x_train), size), full_mnist_split(mnist))
