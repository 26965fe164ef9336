"""A real HTTP server of stand-in MNIST files (port 0) for the download tests: the files, their
registry entry, and a URL where nothing listens."""

from __future__ import annotations

import gzip
import hashlib
import socket
import struct
from dataclasses import replace
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from engine.data import datasets
from engine.data import mnist as data


def idx_gz(array: np.ndarray) -> bytes:
    """The gzipped IDX encoding of a uint8 array, written independently of engine.data.mnist."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.tobytes(), compresslevel=1, mtime=0)


@cache
def served_files(n_train: int = data.FULL_VAL_SIZE + 40) -> dict[str, bytes]:
    """The four files (by name) of a small stand-in made from the embedded digits: n_train
    training digits (the embedded ones, repeated), the first 30 as test digits."""
    images, labels = data.load_embedded()
    train = np.resize(np.arange(len(images)), n_train)
    arrays = {"train_images": images[train], "train_labels": labels[train],
              "test_images": images[:30], "test_labels": labels[:30]}
    return {data.IDX_FILES[key]: idx_gz(array) for key, array in arrays.items()}


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


class Server:
    """A local HTTP server: what it serves, and the Range headers it was asked for."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.ranges: list[str | None] = []
        self.dropped: set[str] = set()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output quiet
                pass

            def do_GET(self) -> None:
                route, _, name = self.path.strip("/").partition("/")
                server.ranges.append(self.headers.get("Range"))
                if route == "missing" or name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                if route == "corrupt":
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                self.send_body(body, drop=route == "drop" and name not in server.dropped)
                if route == "drop":
                    server.dropped.add(name)

            def send_body(self, body: bytes, *, drop: bool) -> None:
                start = 0
                asked = self.headers.get("Range")
                if asked:
                    start = int(asked.removeprefix("bytes=").rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                rest = body[start:]
                self.wfile.write(rest[:len(rest) // 2] if drop else rest)
                self.close_connection = True

        return Handler


def source_for(files: dict[str, bytes]) -> datasets.Source:
    """The MNIST registry entry with the MD5s of our stand-in files."""
    md5s = {key: md5(files[name]) for key, name in data.IDX_FILES.items()}
    return replace(datasets.SOURCES["mnist"], md5s=md5s)


def closed_port_url() -> str:
    """A URL on which nothing listens: connecting is refused, as when offline."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
