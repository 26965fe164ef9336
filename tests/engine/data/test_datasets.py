"""The data-set registry and its download, against a real HTTP server started here (port 0).

The server serves IDX `.gz` files built from the embedded digits; the registry entry the tests
download is one with those files' own MD5s. Routes: /good/ (with HTTP Range), /drop/ (the first
answer for each file stops halfway), /corrupt/ (other bytes), /missing/ (404).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from dataset_server import Server, closed_port_url, served_files, source_for

from engine.data import datasets
from engine.data import mnist as data
from engine.data.datasets import DownloadError


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server(served_files())
    thread = threading.Thread(target=running.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def final_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if not path.name.endswith(".part"))


# --- the registry and the cache folder ---------------------------------------------------------


def test_registry_lists_the_three_sets_with_their_class_names() -> None:
    assert list(datasets.TITLES) == ["embedded", "mnist", "fashion"]
    assert datasets.SOURCES["fashion"].class_names[0] == "T-shirt/top"
    assert datasets.SOURCES["fashion"].class_names[9] == "Ankle boot"
    for source in datasets.SOURCES.values():
        assert len(source.class_names) == data.N_CLASSES
        assert set(source.md5s) == set(data.IDX_FILES)
        assert all(len(value) == 32 and int(value, 16) >= 0 for value in source.md5s.values())


def test_cache_folder_and_mirrors_come_from_the_environment(tmp_path, monkeypatch) -> None:
    source = datasets.SOURCES["fashion"]
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path))
    assert datasets.cache_folder(source) == tmp_path / "fashion"
    monkeypatch.delenv(datasets.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_folder(source) == tmp_path / "xdg" / "glassbox" / "fashion"
    assert datasets.mirrors(source) == source.mirrors
    monkeypatch.setenv("GLASSBOX_FASHION_MIRRORS", " http://a/ ,http://b/")
    assert datasets.mirrors(source) == ("http://a/", "http://b/")


@pytest.mark.parametrize(("done", "total", "index", "expected"),
                         [(0, 100, 0, 0.0), (50, 100, 1, 0.375), (100, 100, 3, 1.0),
                          (7, None, 2, 0.5)])
def test_progress_fraction_counts_each_file_the_same(done, total, index, expected) -> None:
    assert datasets.Progress("f", index, 4, done, total).fraction == expected


# --- download against the local server ----------------------------------------------------------


def test_a_good_download_lands_verified_files_and_reads_as_a_split(server, tmp_path) -> None:
    source = source_for(server.files)
    seen: list[datasets.Progress] = []
    folder = datasets.download(source, tmp_path / "mnist", urls=(server.url + "/good/",),
                               on_progress=seen.append)
    assert final_files(folder) == sorted(server.files)
    assert not list(folder.glob("*.part"))
    assert datasets.is_downloaded(folder)
    assert seen[-1].fraction == 1.0 and seen[-1].total == seen[-1].done
    assert [p.fraction for p in seen] == sorted(p.fraction for p in seen)
    dataset = datasets.read_downloaded(source, folder)
    assert (len(dataset.split.x_train), len(dataset.split.x_val)) == (40, data.FULL_VAL_SIZE)
    assert dataset.split.x_test.shape == (30, 28, 28)
    assert np.array_equal(dataset.split.x_test, data.load_embedded()[0][:30])
    requests = len(server.ranges)
    datasets.download(source, folder, urls=(server.url + "/good/",))
    assert len(server.ranges) == requests  # files already there are not fetched again


def test_a_dropped_connection_is_resumed_with_a_range_request(server, tmp_path) -> None:
    source = source_for(server.files)
    folder = datasets.download(source, tmp_path / "mnist", urls=(server.url + "/drop/",))
    assert final_files(folder) == sorted(server.files)
    resumed = [asked for asked in server.ranges if asked]
    assert len(resumed) == 4 and all(asked != "bytes=0-" for asked in resumed)
    assert datasets.read_downloaded(source, folder).split.x_test.shape == (30, 28, 28)


def test_an_interrupted_download_leaves_no_file_under_its_final_name(server, tmp_path,
                                                                      monkeypatch) -> None:
    source = source_for(server.files)
    monkeypatch.setattr(datasets, "ATTEMPTS_PER_MIRROR", 1)  # no second try: it stays cut
    folder = tmp_path / "mnist"
    with pytest.raises(DownloadError, match="dropped after"):
        datasets.download(source, folder, urls=(server.url + "/drop/",))
    assert final_files(folder) == []
    assert not datasets.is_downloaded(folder)
    # The next try resumes from the part that arrived.
    asked_before = len(server.ranges)
    datasets.download(source, folder, urls=(server.url + "/good/",))
    assert server.ranges[asked_before].startswith("bytes=") and datasets.is_downloaded(folder)


def test_a_corrupt_file_is_rejected_and_nothing_lands(server, tmp_path) -> None:
    source = source_for(server.files)
    folder = tmp_path / "mnist"
    with pytest.raises(DownloadError, match="MD5 is not the published"):
        datasets.download(source, folder, urls=(server.url + "/corrupt/",))
    assert list(folder.iterdir()) == []


def test_the_first_mirror_failing_falls_over_to_the_next(server, tmp_path) -> None:
    source = source_for(server.files)
    folder = datasets.download(source, tmp_path / "mnist",
                               urls=(server.url + "/missing/", closed_port_url(),
                                     server.url + "/good/"))
    assert datasets.is_downloaded(folder)


def test_a_folder_can_be_a_mirror(tmp_path) -> None:
    files = served_files()
    mirror = tmp_path / "usb-stick"
    mirror.mkdir()
    for name, content in files.items():
        (mirror / name).write_bytes(content)
    folder = datasets.download(source_for(files), tmp_path / "m", urls=(mirror.as_uri(),))
    assert final_files(folder) == sorted(files)


def test_mirrors_from_the_environment_are_used(server, tmp_path, monkeypatch) -> None:
    source = source_for(server.files)
    monkeypatch.setenv(source.mirror_env, f"{server.url}/missing/,{server.url}/good/")
    assert datasets.is_downloaded(datasets.download(source, tmp_path / "mnist"))


def test_offline_says_so_and_leaves_the_cache_empty(tmp_path) -> None:
    source = datasets.SOURCES["fashion"]
    folder = tmp_path / "fashion"
    with pytest.raises(DownloadError, match="offline") as raised:
        datasets.download(source, folder, urls=(closed_port_url(), closed_port_url()))
    assert "train-images-idx3-ubyte.gz" in str(raised.value)
    assert str(raised.value).count("unreachable") == 2  # one try per mirror: no point retrying
    assert list(folder.iterdir()) == []


def test_a_404_on_every_mirror_is_named_not_called_offline(server, tmp_path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404") as raised:
        datasets.download(source_for(server.files), tmp_path / "m",
                          urls=(server.url + "/missing/",))
    assert "offline" not in str(raised.value)


def test_a_file_larger_than_any_data_set_file_is_stopped(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(DownloadError, match="larger than"):
        datasets.download(source_for(server.files), tmp_path / "m", urls=(server.url + "/good/",))
    assert final_files(tmp_path / "m") == []
