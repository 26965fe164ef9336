"""The rooms' data-set picker in AppTest: a missing set offers its download (served here by a
real local HTTP server, files built from the embedded digits), offline says so, a present set
trains."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import jax
import pytest
from dataset_server import Server, closed_port_url, served_files, source_for
from helpers import leave_no_run, messages, open_page, room_run, run_until_done, said

from engine.data import datasets
from ui.views.datasets import DOWNLOAD_FIRST, download_lock

FF = "pages/feedforward.py"
CNN = "pages/cnn.py"


@pytest.fixture
def cache(tmp_path, monkeypatch, runs_dir):
    """An empty data-set cache of this test's own."""
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("GLASSBOX_MNIST_DIR", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def mirror(monkeypatch) -> Iterator[Server]:
    """A local server of the stand-in files, made Fashion-MNIST's only mirror, with the
    registry entry carrying those files' MD5s."""
    server = Server(served_files())
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fashion = replace(source_for(server.files), key="fashion",
                      title=datasets.SOURCES["fashion"].title,
                      class_names=datasets.SOURCES["fashion"].class_names)
    monkeypatch.setitem(datasets.SOURCES, "fashion", fashion)
    monkeypatch.setenv(fashion.mirror_env, server.url + "/good/")
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.mark.parametrize(("page", "prefix"), [(FF, "ff"), (CNN, "cnn")])
def test_picking_a_missing_set_offers_its_download_and_refuses_to_train(cache, page,
                                                                        prefix) -> None:
    at = open_page(page)
    assert at.selectbox(key=f"{prefix}_dataset").value == "embedded"
    assert f"JAX trains on: {jax.default_backend().upper()}" in messages(at.caption)
    assert not _has_button(at, prefix)
    at.selectbox(key=f"{prefix}_dataset").set_value("mnist").run()
    assert "Full MNIST (download)" in at.selectbox(key=f"{prefix}_dataset").options
    assert not at.exception
    assert "full MNIST (70,000 digits)** is not on this machine yet" in said(at)
    assert str(cache / "mnist") in said(at)
    assert _has_button(at, prefix)
    at.button(key=f"{prefix}_start").click().run()
    assert DOWNLOAD_FIRST in messages(at.warning)
    assert room_run(at, f"{prefix}_room") is None


def _image_captions(at) -> str:
    """Every image's caption on the page, one per line."""
    return "\n".join(image.caption for element in at.get("image") for image in element.proto.imgs)


def _graded(at) -> bool:
    """Whether the Evaluation tab shows a test accuracy."""
    return any(metric.label.startswith("Test accuracy") for metric in at.metric)


def _has_button(at, prefix: str) -> bool:
    return any(button.key == f"{prefix}_get_dataset" for button in at.button)


def test_download_from_the_page_then_train_on_it(cache, mirror) -> None:
    at = open_page(FF)
    at.selectbox(key="ff_dataset").set_value("fashion").run()
    at.button(key="ff_get_dataset").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert datasets.is_downloaded(cache / "fashion")
    assert not _has_button(at, "ff")  # the page reran with the set in place
    assert "0 T-shirt/top" in messages(at.caption) and "9 Ankle boot" in messages(at.caption)
    # The default digit reader is not graded on clothes; the clothes model it trains is.
    assert "cannot be graded" in messages(at.info) and not _graded(at)
    at.text_input(key="ff_hidden").set_value("8")
    at.number_input(key="ff_batch_size").set_value(20)
    at.number_input(key="ff_epochs").set_value(1)
    at.button(key="ff_start").click().run()
    try:
        run_until_done(at, "ff_room")
        assert not at.exception, [e.value for e in at.exception]
        view = room_run(at, "ff_room").view()
        assert view.status == "finished" and view.model is not None
        assert view.model.metadata["dataset"] == datasets.SOURCES["fashion"].title
        # The room shows its clothes model; the sketch lab keeps its digit readers.
        assert at.session_state["ff_room"].model.metadata["dataset"] == view.model.metadata[
            "dataset"]
        kept = at.session_state.get("trained_models", {})
        assert "ffnn-jax" not in kept
        at.run()
        assert _graded(at) and "cannot be graded" not in messages(at.info)
    finally:
        leave_no_run(at, "ff_room")


def test_the_cnn_room_names_a_followed_image_by_its_class(cache, mirror) -> None:
    at = open_page(CNN)
    at.number_input(key="cnn_test_index").set_value(0).run()
    assert "what the net sees: test digit #0 (a " in _image_captions(at)
    at.selectbox(key="cnn_dataset").set_value("fashion").run()
    at.button(key="cnn_get_dataset").click().run()
    source = datasets.SOURCES["fashion"]
    label = int(datasets.read_downloaded(source, cache / "fashion").split.y_test[0])
    assert (f"what the net sees: test image #0 ({source.class_names[label]})"
            in _image_captions(at))


def test_offline_download_says_so_and_the_room_stays_usable(cache, mirror, monkeypatch) -> None:
    monkeypatch.setenv(datasets.SOURCES["fashion"].mirror_env,
                       f"{closed_port_url()},{closed_port_url()}")
    at = open_page(CNN)
    at.selectbox(key="cnn_dataset").set_value("fashion").run()
    at.button(key="cnn_get_dataset").click().run()
    assert not at.exception
    assert "offline" in messages(at.error)
    assert not datasets.is_downloaded(cache / "fashion")
    assert _has_button(at, "cnn")  # the offer stays, for when the network is back


def test_a_download_under_way_in_another_session_is_waited_for_not_repeated(cache,
                                                                          mirror) -> None:
    at = open_page(FF)
    at.selectbox(key="ff_dataset").set_value("fashion").run()
    lock = download_lock("fashion")
    lock.acquire()  # another visitor's download is under way...
    asked_while_held: list[int] = []

    def the_other_download() -> None:
        asked_while_held.append(len(mirror.ranges))  # this page fetched nothing meanwhile?
        datasets.download(datasets.SOURCES["fashion"], cache / "fashion")
        lock.release()

    # ...and ends a little later, most likely while this page waits for it.
    other = threading.Timer(2.0, the_other_download)
    other.start()
    at.button(key="ff_get_dataset").click().run()
    other.join()
    assert not at.exception
    assert asked_while_held == [0]
    assert len(mirror.ranges) == 4  # each file fetched once, by the other visitor
    assert not _has_button(at, "ff")
