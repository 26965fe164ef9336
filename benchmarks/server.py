"""A real `streamlit run` on a free loopback port, and headless Chromium to look at it.

Shared by the benchmarks (start-up time, memory) and the real-browser tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("GLASSBOX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
# The Sketch lab's top guesses once given: one per model (a dash stands there before a drawing).
ANSWERED_GUESSES = "[data-testid='stMetricValue'] >> text=/^[0-9]/"


class ServerError(RuntimeError):
    """The Streamlit server did not come up (its log is in the message)."""


@dataclass
class Server:
    """A running server: its process and the address to open."""

    process: subprocess.Popen
    url: str

    def healthy(self, timeout: float = 1.0) -> bool:
        """Whether /_stcore/health answers 'ok' within `timeout` seconds."""
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=timeout) as reply:
                return reply.read().strip() == b"ok"
        except OSError:
            return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_available() -> bool:
    return shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()


@contextlib.contextmanager
def streamlit_server(
    env: dict[str, str] | None = None, startup_timeout: float = 60.0
) -> Iterator[Server]:
    """Start `streamlit run streamlit_app.py` headless on a free port; stop it on exit."""
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]
    # A file, not a pipe: a pipe nobody reads would block the server once it fills.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **(env or {})},
            stdout=log, stderr=subprocess.STDOUT,
        )
        server = Server(process, f"http://127.0.0.1:{port}")
        try:
            deadline = time.monotonic() + startup_timeout
            while not server.healthy():
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise ServerError(f"streamlit did not become healthy:\n{output[-3000:]}")
                time.sleep(0.1)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
