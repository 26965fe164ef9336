"""Cached, shared, read-only loaders for what every session uses: data sets (models later)."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from engine.data import datasets
from engine.data import mnist as data


@st.cache_resource(show_spinner=False)
def load_embedded_dataset() -> data.Dataset:
    """The embedded 5,000 digits under their fixed split, loaded once per server (uint8, ~4 MB)."""
    return data.embedded_dataset()


@st.cache_resource(show_spinner="Reading full MNIST…")
def _full_mnist_dataset(folder: str | None) -> data.Dataset | None:
    mnist = data.find_full_mnist(folder)
    return None if mnist is None else datasets.as_dataset(datasets.SOURCES["mnist"], mnist)


def load_full_mnist_dataset(folder: str | None = None) -> data.Dataset | None:
    """Full MNIST from folder or env GLASSBOX_MNIST_DIR, once per folder; None if neither is set.

    Raises engine.data.mnist.DatasetError (not cached, so a fixed folder is read on the next try).
    """
    return _full_mnist_dataset(folder or os.environ.get(data.MNIST_DIR_ENV) or None)


@st.cache_resource(show_spinner="Reading the data set…")
def _downloaded_dataset(key: str, folder: str) -> data.Dataset:
    return datasets.read_downloaded(datasets.SOURCES[key], Path(folder))


def is_present(key: str) -> bool:
    """Whether data set `key` (a datasets.TITLES key) can be read without a download."""
    if key == datasets.EMBEDDED or (key == "mnist" and os.environ.get(data.MNIST_DIR_ENV)):
        return True
    return datasets.is_downloaded(datasets.cache_folder(datasets.SOURCES[key]))


def load_dataset(key: str) -> data.Dataset | None:
    """Data set `key` (a datasets.TITLES key), read once per server; None while it is not
    downloaded. Full MNIST comes from env GLASSBOX_MNIST_DIR when set, else from the cache.

    Raises engine.data.mnist.DatasetError when its files are there but unusable (not cached).
    """
    if key == datasets.EMBEDDED:
        return load_embedded_dataset()
    if key == "mnist" and os.environ.get(data.MNIST_DIR_ENV):
        return load_full_mnist_dataset()
    if not is_present(key):
        return None
    return _downloaded_dataset(key, str(datasets.cache_folder(datasets.SOURCES[key])))
