"""Refresh requirements.lock, the exact versions CI and the README's test command install.

    python scripts/refresh_lock.py

It asks pip to resolve requirements-dev.txt from scratch (nothing is installed: `pip install
--dry-run --ignore-installed --report`) and writes every package it would install, pinned.
Commit the new lock on its own, after the whole suite passed with it installed
(`pip install -r requirements-dev.txt -c requirements.lock`): a dependency's new release then
reaches the project only by that deliberate commit. requirements.txt keeps the ranges a host
(Streamlit Community Cloud) installs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("# Exact versions for CI and the README's test command (a pip constraints file).\n"
          "# Made by `python scripts/refresh_lock.py` for Python {python} on Linux; edit\n"
          "# requirements*.txt for ranges, then refresh this file in a commit of its own.\n")


def resolved(requirements: Path) -> dict[str, str]:
    """{package: version} pip would install for `requirements` into an empty environment."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                        "--quiet", "--disable-pip-version-check", "--report", str(report),
                        "-r", str(requirements)], check=True)
        installs = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in installs}


def main() -> None:
    pins = resolved(ROOT / "requirements-dev.txt")
    python = ".".join(map(str, sys.version_info[:2]))
    lines = [f"{name}=={version}" for name, version in sorted(pins.items(), key=lambda p:
                                                              p[0].lower())]
    (ROOT / "requirements.lock").write_text(HEADER.format(python=python) + "\n".join(lines) + "\n")
    print(f"requirements.lock: {len(lines)} packages pinned")


if __name__ == "__main__":
    main()
