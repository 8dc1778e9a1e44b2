"""MNIST's files: four gzipped IDX files, downloaded once, checked against their SHA-256 sums, and read.

Missing files are downloaded with urllib from the first mirror that answers, checked against their published
SHA-256 sums and cached in ``data/MNIST/`` at the project root; later runs only check them.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import shutil
import struct
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# The SHA-256 of each gzipped file as published on the mirrors (the original yann.lecun.com files).
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "MNIST"
IDX_UNSIGNED_BYTE = 0x08


class MissingDataError(RuntimeError):
    """The dataset files are missing and cannot be downloaded, or are not the expected files."""


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(name: str, target: Path, expected: str, mirrors: Sequence[str]) -> None:
    """Download ``name`` from the first mirror that has it with the ``expected`` checksum."""
    partial = target.with_name(target.name + ".part")
    problems = []
    for mirror in mirrors:
        try:
            with urllib.request.urlopen(mirror + name, timeout=60) as response, open(partial, "wb") as file:
                shutil.copyfileobj(response, file)
        except OSError as error:  # no network, DNS failure, HTTP error, timeout
            problems.append(f"{mirror}{name}: {error}")
            continue
        if file_sha256(partial) == expected:
            partial.replace(target)  # only a verified file ever gets the final name
            return
        problems.append(f"{mirror}{name}: wrong SHA-256")
    partial.unlink(missing_ok=True)
    raise MissingDataError(f"cannot download {name} ({'; '.join(problems) or 'no mirror'})")


def fetch_mnist(root: Path, checksums: dict[str, str], mirrors: Sequence[str] = MIRRORS) -> None:
    """Make sure every file of ``checksums`` is in ``root`` with that SHA-256, downloading missing ones."""
    root.mkdir(parents=True, exist_ok=True)
    for name, expected in checksums.items():
        path = root / name
        if not path.is_file():
            try:
                download(name, path, expected, mirrors)
            except MissingDataError as error:
                missing = ", ".join(name for name in checksums if not (root / name).is_file())
                hint = f"Download {missing} from {' or '.join(mirrors)} and put them in {root}/"
                raise MissingDataError(f"{error}. {hint}") from None
        elif file_sha256(path) != expected:
            raise MissingDataError(f"{path} has the wrong SHA-256: delete it to download it again")


def read_idx(path: Path) -> Tensor:
    """Read a gzipped IDX file of unsigned bytes into a uint8 tensor of the shape it declares."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != IDX_UNSIGNED_BYTE:
        raise MissingDataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    values = data[4 + 4 * ndim :]
    if len(values) != math.prod(shape):
        raise MissingDataError(f"{path} holds {len(values)} values, its header says {shape}")
    return torch.frombuffer(bytearray(values), dtype=torch.uint8).reshape(shape)


def write_idx(path: Path, values: Tensor) -> str:
    """Write a uint8 tensor as a gzipped IDX file (the inverse of :func:`read_idx`); return its SHA-256."""
    header = struct.pack(">BBBB", 0, 0, IDX_UNSIGNED_BYTE, values.dim())
    header += struct.pack(f">{values.dim()}I", *values.shape)
    # mtime=0: the same content always gives the same bytes, hence the same checksum.
    path.write_bytes(gzip.compress(header + values.numpy().tobytes(), mtime=0))
    return file_sha256(path)
