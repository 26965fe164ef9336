"""Every picture helper in one place: images turned into crisp enlarged RGB, the saliency
overlay, feature-map mosaics, and a digit shown enlarged. Pure numpy but for `show_digit`."""

from __future__ import annotations

import numpy as np
import streamlit as st

VIEW_PIXEL = 7  # screen pixels per model-input pixel in the digit views (28 -> 196 px)
HEAT = np.array([1.0, 0.15, 0.05], dtype=np.float32)  # the saliency overlay's red


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A grey image (h, w) in [0, 1] (clipped) as RGB uint8 (h, w, 3); an RGB uint8 image
    (h, w, 3) as it is."""
    image = np.asarray(image)
    if image.ndim == 3:
        return image
    grey = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def enlarged(image: np.ndarray, factor: int = VIEW_PIXEL) -> np.ndarray:
    """image (grey (h, w) in [0, 1], or RGB uint8 (h, w, 3)) as RGB uint8 with each pixel a
    crisp factor x factor block: (h * factor, w * factor, 3)."""
    return as_rgb(image).repeat(factor, axis=0).repeat(factor, axis=1)


def saliency_overlay(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """The digit (28, 28) in [0, 1], dimmed to grey, with |saliency| (28, 28) painted red on
    top, strongest pixel full red: RGB uint8 (28, 28, 3)."""
    heat = np.abs(np.asarray(saliency, dtype=np.float32))
    heat = heat / heat.max() if heat.max() > 0 else heat
    grey = 0.35 * np.asarray(image, dtype=np.float32)[..., None]
    rgb = grey * (1 - heat[..., None]) + heat[..., None] * HEAT
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def feature_map_mosaic(maps: np.ndarray, columns: int = 4, gap: int = 1) -> np.ndarray:
    """Feature maps (h, w, filters) side by side in rows of `columns`, each scaled by its own
    maximum, separated by mid-grey gaps: RGB uint8 (rows*(h+gap)-gap, columns*(w+gap)-gap, 3)."""
    maps = np.asarray(maps, dtype=np.float32)
    h, w, n = maps.shape
    rows = -(-n // columns)
    mosaic = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), 0.5, np.float32)
    for i in range(n):
        top, left = (i // columns) * (h + gap), (i % columns) * (w + gap)
        peak = maps[..., i].max()
        mosaic[top:top + h, left:left + w] = maps[..., i] / peak if peak > 0 else 0.0
    return as_rgb(mosaic)


def show_digit(image: np.ndarray, caption: str) -> None:
    """A 28×28 image in [0, 1], enlarged with crisp pixels."""
    st.image(enlarged(image), width=28 * VIEW_PIXEL, caption=caption)
