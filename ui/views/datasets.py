"""The rooms' data-set picker: embedded digits, full MNIST or Fashion-MNIST, and the one-time
download of a set that is not on this machine yet."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import jax
import streamlit as st

from engine.data import datasets
from engine.data import mnist as data
from ui.loaders import is_present, load_dataset

# Short enough for a narrow column; the full titles (with sizes) are in engine.data.datasets.TITLES.
PICKER_LABELS = {datasets.EMBEDDED: "Embedded digits", "mnist": "Full MNIST",
                 "fashion": "Fashion-MNIST"}
DOWNLOAD_FIRST = ("The chosen data set is not on this machine yet: press its **Download** button "
                  "below the data-set picker first, or pick the embedded digits.")


def chosen_dataset(prefix: str) -> data.Dataset | None:
    """The data set picked in the room (state key f"{prefix}_dataset"), or None while it is
    not downloaded or unusable (an st.warning says why). A full-MNIST folder set by the host
    (env GLASSBOX_MNIST_DIR) is checked even when another set is picked."""
    choice = st.session_state.setdefault(f"{prefix}_dataset", datasets.EMBEDDED)
    hosted = ["mnist"] if os.environ.get(data.MNIST_DIR_ENV) else []
    found = {key: _load_or_warn(key) for key in dict.fromkeys([*hosted, choice])}
    return found[choice]


def _load_or_warn(key: str) -> data.Dataset | None:
    """load_dataset(key), or None with an st.warning saying what is wrong with its files."""
    try:
        return load_dataset(key)
    except data.DatasetError as error:
        if key == "mnist" and os.environ.get(data.MNIST_DIR_ENV):
            st.warning(f"Full MNIST is configured but unusable: {error}")
        else:
            folder = datasets.cache_folder(datasets.SOURCES[key])
            st.warning(f"The {datasets.TITLES[key]} files in `{folder}` are unusable: {error}. "
                       "Delete that folder and download them again.")
        return None


def dataset_picker(prefix: str, where) -> None:
    """The "Data set" selectbox in `where` (a column) with the device JAX trains on under it;
    below, in the current container, the download offer for a set that is missing, or the class
    names of one that is not digits."""
    where.selectbox("Data set", list(datasets.TITLES), key=f"{prefix}_dataset",
                    format_func=_label,
                    help="The embedded digits (5,000) ship with the app. Full MNIST (70,000 "
                         "digits) and Fashion-MNIST (70,000 clothing images) are downloaded "
                         "once into a cache folder.")
    where.caption(f"JAX trains on: {jax_device()}")
    key = st.session_state[f"{prefix}_dataset"]
    if not is_present(key):
        offer_download(prefix, datasets.SOURCES[key])
    elif key in datasets.SOURCES and datasets.SOURCES[key].class_names != data.DIGIT_NAMES:
        st.caption("Classes: " + " · ".join(
            f"{label} {name}" for label, name in enumerate(datasets.SOURCES[key].class_names)))


def jax_device() -> str:
    """JAX's default device in words: "CPU", or e.g. "GPU (NVIDIA H200)"."""
    device = jax.devices()[0]
    backend = jax.default_backend().upper()
    return backend if device.device_kind.upper() == backend else f"{backend} ({device.device_kind})"


def _label(key: str) -> str:
    return PICKER_LABELS[key] + ("" if is_present(key) else " (download)")


def offer_download(prefix: str, source: datasets.Source) -> None:
    """Say that source is missing and offer its download, with a progress bar; on success the
    page reruns with the set in place, on failure an st.error says why."""
    folder = datasets.cache_folder(source)
    hosts = ", ".join(urlparse(url).netloc or url for url in datasets.mirrors(source))
    st.info(f"**{source.title}** is not on this machine yet. Download its four files once "
            f"(from {hosts}, each checked against its published MD5) into `{folder}`. "
            "Until then the room shows the embedded digits.")
    if not st.button(f"Download {source.title}", key=f"{prefix}_get_dataset", type="primary"):
        return
    if download_with_progress(source, folder):
        st.toast(f"{source.title} is ready.")
        st.rerun()


@st.cache_resource(show_spinner=False)
def download_lock(key: str) -> threading.Lock:
    """One download of a set at a time in this server: two sessions appending to the same
    `.part` file would spoil it (a class of learners may all press Download at once)."""
    return threading.Lock()


def download_with_progress(source: datasets.Source, folder: Path) -> bool:
    """Download source into folder under a progress bar, unless another session did meanwhile;
    True when the set is in place, False (with an st.error saying why) when it is not."""
    lock = download_lock(source.key)
    if not lock.acquire(blocking=False):
        with st.spinner("Another visitor is downloading this data set; waiting for them…"):
            lock.acquire()
    bar = st.progress(0.0, text="Connecting…")
    try:
        if not datasets.is_downloaded(folder):
            datasets.download(source, folder, on_progress=_progress_bar(bar))
        return True
    except data.DatasetError as error:
        st.error(f"The download did not complete. {error}")
    except OSError as error:
        st.error(f"Cannot write to `{folder}` ({error}). Set {datasets.CACHE_ENV} to a "
                 "writable folder and restart the app.")
    finally:
        lock.release()
        bar.empty()
    return False


def _progress_bar(bar):
    """An on_progress callback that moves bar, redrawn only when the whole percent changes."""
    shown = [-1]

    def update(progress: datasets.Progress) -> None:
        percent = int(progress.fraction * 100)
        if percent != shown[0]:
            shown[0] = percent
            size = f" of {progress.total / 1e6:.1f} MB" if progress.total else ""
            bar.progress(progress.fraction, text=f"{progress.file} ({progress.index + 1} of "
                                                 f"{progress.count}): "
                                                 f"{progress.done / 1e6:.1f}{size}")

    return update
