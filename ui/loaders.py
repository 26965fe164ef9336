"""Cached, shared, read-only loaders for what every session uses: data sets (models later)."""

from __future__ import annotations

import os

import streamlit as st

from engine import data


@st.cache_resource(show_spinner=False)
def load_embedded_dataset() -> data.Dataset:
    """The embedded 5,000 digits under their fixed split, loaded once per server (uint8, ~4 MB)."""
    return data.embedded_dataset()


@st.cache_resource(show_spinner="Reading full MNIST…")
def _full_mnist_dataset(folder: str | None) -> data.Dataset | None:
    mnist = data.find_full_mnist(folder)
    return None if mnist is None else data.full_mnist_dataset(mnist)


def load_full_mnist_dataset(folder: str | None = None) -> data.Dataset | None:
    """Full MNIST from folder or env GLASSBOX_MNIST_DIR, once per folder; None if neither is set.

    Raises engine.data.DatasetError (not cached, so a fixed folder is read on the next try).
    """
    return _full_mnist_dataset(folder or os.environ.get(data.MNIST_DIR_ENV) or None)


def available_datasets() -> dict[str, data.Dataset]:
    """{"embedded": ..., and "full" when full MNIST is configured and readable}; an st.warning
    says why a configured full MNIST cannot be used."""
    datasets = {"embedded": load_embedded_dataset()}
    try:
        full = load_full_mnist_dataset()
    except data.DatasetError as error:
        st.warning(f"Full MNIST is configured but unusable: {error}")
        full = None
    if full is not None:
        datasets["full"] = full
    return datasets
