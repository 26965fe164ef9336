"""The data sets a room can train on, where their files are cached, and their checked download.

"embedded" ships with the app (5,000 digits, offline). "mnist" (70,000 digits) and "fashion"
(Fashion-MNIST, 70,000 clothing images in the same IDX format) are four `.gz` files each, fetched
once into a cache folder: from the first mirror that works, streamed with progress, resumed with
an HTTP Range request after a dropped connection, and renamed into place only after the MD5
matches the published one. A file under its final name is therefore always a verified one.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.data import mnist as data

EMBEDDED = "embedded"
CACHE_ENV = "GLASSBOX_CACHE_DIR"  # the folder holding one sub-folder per data set
MAX_DOWNLOAD_BYTES = 64_000_000  # the largest file (Fashion train images) is 26 MB
CHUNK = 1 << 16
TIMEOUT_S = 30  # a dead mirror fails after this, instead of hanging the page
ATTEMPTS_PER_MIRROR = 2  # the second one resumes where a dropped connection stopped


class DownloadError(data.DatasetError):
    """No mirror delivered a file with the published checksum. The message says what each did."""


@dataclass(frozen=True)
class Source:
    """A downloadable data set: its four IDX files (data.IDX_FILES's keys -> published MD5),
    the mirrors that serve them (base URLs), and its class names (label i is class_names[i])."""

    key: str
    title: str
    md5s: dict[str, str]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]

    @property
    def mirror_env(self) -> str:
        """The environment variable that replaces the mirrors: base URLs, comma-separated."""
        return f"GLASSBOX_{self.key.upper()}_MIRRORS"


@dataclass(frozen=True)
class Progress:
    """How far a download is: file `index` (0-based) of `count`, `done` of `total` bytes
    (total None when the server does not say)."""

    file: str
    index: int
    count: int
    done: int
    total: int | None

    @property
    def fraction(self) -> float:
        """The whole download's progress in [0, 1], each file counting the same."""
        within = min(self.done / self.total, 1.0) if self.total else 0.0
        return (self.index + within) / self.count


OnProgress = Callable[[Progress], None]

# MD5s as published with the files (torchvision's MNIST and FashionMNIST resources list the same).
SOURCES = {
    "mnist": Source(
        "mnist", "full MNIST (70,000 digits)",
        {"train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
         "test_images": "9fb629c4189551a2d022fa330f9573f3",
         "test_labels": "ec29112dd5afa0611ce80d1b7f02629c"},
        ("https://storage.googleapis.com/cvdf-datasets/mnist/",
         "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        data.DIGIT_NAMES),
    "fashion": Source(
        "fashion", "Fashion-MNIST (70,000 clothing images)",
        {"train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
         "test_images": "bef4ecab320f06d8554ea6380940ec79",
         "test_labels": "bb300cfdad3c16e7a12a480ee83cd310"},
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot")),
}
TITLES = {EMBEDDED: data.EMBEDDED_TITLE,
          **{key: source.title for key, source in SOURCES.items()}}


def class_names_of(title: str) -> tuple[str, ...]:
    """The classes a model trained on the data set of this title (a Model's metadata "dataset")
    reads: its source's, or the digits for any other title (the embedded digits, an older file)."""
    return next((source.class_names for source in SOURCES.values() if source.title == title),
                data.DIGIT_NAMES)


def reads_digits(title: str) -> bool:
    """Whether a model trained on the data set of this title reads handwritten digits: False for
    a known set of other classes (Fashion-MNIST)."""
    return class_names_of(title) == data.DIGIT_NAMES


# --- where the files live -------------------------------------------------------------------


def cache_root() -> Path:
    """The cache folder: env GLASSBOX_CACHE_DIR, else the user's cache dir (XDG_CACHE_HOME or
    ~/.cache) / glassbox."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glassbox"


def cache_folder(source: Source) -> Path:
    """The folder that holds (or will hold) source's four files: cache_root() / source.key."""
    return cache_root() / source.key


def mirrors(source: Source) -> tuple[str, ...]:
    """The base URLs to try in order: env GLASSBOX_<KEY>_MIRRORS (comma-separated) or the
    published ones."""
    configured = os.environ.get(source.mirror_env, "")
    chosen = tuple(url.strip() for url in configured.split(",") if url.strip())
    return chosen or source.mirrors


def is_downloaded(folder: Path) -> bool:
    """Whether all four files are in folder (a file there under its final name was verified)."""
    return all((folder / name).is_file() for name in data.IDX_FILES.values())


def as_dataset(source: Source, arrays: data.Mnist) -> data.Dataset:
    """source's arrays under full MNIST's split (55,000 / 5,000 / 10,000), named for the UI."""
    return data.Dataset(source.title, data.full_mnist_split(arrays), source.class_names)


def read_downloaded(source: Source, folder: Path) -> data.Dataset:
    """source's data set from its four files in folder. Raises DatasetError if one is bad."""
    return as_dataset(source, data.read_idx_folder(folder))


# --- download ---------------------------------------------------------------------------------


def file_md5(path: Path) -> str:
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()  # noqa: S324 (checks a published checksum, not security)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(source: Source, folder: Path, *, urls: tuple[str, ...] | None = None,
             on_progress: OnProgress | None = None) -> Path:
    """Fetch source's missing files into folder from urls (base URLs, default `mirrors(source)`),
    reporting Progress to on_progress. Returns folder, ready for `read_downloaded`.

    Raises DownloadError naming each mirror's failure; files already verified are kept.
    """
    folder.mkdir(parents=True, exist_ok=True)
    bases = urls or mirrors(source)
    names = data.IDX_FILES
    for index, (key, name) in enumerate(names.items()):
        if (folder / name).is_file():
            continue

        def report(done: int, total: int | None, name: str = name, index: int = index) -> None:
            if on_progress is not None:
                on_progress(Progress(name, index, len(names), done, total))

        fetch_verified([base.rstrip("/") + "/" + name for base in bases], folder / name,
                       source.md5s[key], report)
    return folder


def fetch_verified(urls: list[str], dest: Path, md5: str,
                   report: Callable[[int, int | None], None]) -> None:
    """Put the file with this md5 at dest, trying urls in order (each twice, resuming).

    The bytes go to `dest.part`; it is renamed to dest only once its MD5 matches. A file that
    does not match is deleted; a dropped download's part stays, for the next try to resume.
    """
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    for url in urls:
        for _ in range(ATTEMPTS_PER_MIRROR):
            try:
                fetch_into(url, part, report)
            except urllib.error.HTTPError as error:
                failures.append(f"{url}: HTTP {error.code} {error.reason}")
                break  # the server answered: asking it again will not help
            except (OSError, http.client.HTTPException, DownloadError) as error:
                failures.append(f"{url}: {describe_failure(error)}")
                if failures[-1].startswith(f"{url}: unreachable"):
                    break  # nothing arrived: try the next mirror
                continue  # the next attempt resumes from what arrived
            if file_md5(part) == md5:
                os.replace(part, dest)  # atomic on one file system
                return
            part.unlink()
            failures.append(f"{url}: the file's MD5 is not the published {md5}")
            break
    raise DownloadError(failure_message(dest.name, failures))


def fetch_into(url: str, part: Path, report: Callable[[int, int | None], None]) -> None:
    """Append url's bytes to part, asking for only the rest (HTTP Range) when part has some.

    Raises DownloadError when the connection ends before the announced length or the file is
    larger than any data set file; OSError / HTTPException when the connection fails.
    """
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 (configurable)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to send: part is whole, its MD5 decides
            return
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else None
        done = have
        with open(part, "ab" if have else "wb") as out:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                done += len(chunk)
                if done > MAX_DOWNLOAD_BYTES:
                    raise DownloadError(f"larger than {MAX_DOWNLOAD_BYTES:,} bytes, stopped")
                out.write(chunk)
                report(done, total)
    if total is not None and done < total:
        raise DownloadError(f"the connection dropped after {done:,} of {total:,} bytes")


def describe_failure(error: BaseException) -> str:
    """A short reason for a failed attempt; "unreachable" for the failures of being offline."""
    reason = getattr(error, "reason", error)
    if isinstance(reason, ConnectionRefusedError | socket.gaierror | TimeoutError):
        return f"unreachable ({reason})"
    return str(reason) or type(error).__name__


def failure_message(name: str, failures: list[str]) -> str:
    """What to tell the user when no mirror delivered `name`."""
    if failures and all("unreachable" in failure for failure in failures):
        lead = (f"Could not reach any mirror for {name}: is this machine offline? Copy the four "
                "files into the cache folder by hand, or set a reachable mirror.")
    else:
        lead = f"No mirror delivered {name} with its published checksum."
    return lead + " Tried: " + "; ".join(failures)
