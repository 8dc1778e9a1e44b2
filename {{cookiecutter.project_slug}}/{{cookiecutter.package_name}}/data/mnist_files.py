"""MNIST's files: four gzipped IDX files, downloaded once, checked against their SHA-256 sums, and read.

Missing files are downloaded with urllib from the first mirror that answers, checked against their published
SHA-256 sums and cached in ``data/MNIST/`` at the project root; later runs only check them. One process of a
machine downloads while the others wait for it; a file gets its final name only once it is complete and
verified, so a reader never sees half a file, even where processes of several machines share the folder.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import secrets
import shutil
import struct
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor

try:
    import fcntl
except ImportError:  # Windows: no lock, so processes may download side by side, each into its own file
    fcntl = None

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
LOCK = ".download.lock"  # in the data folder; left there, since deleting a lock file others wait on is racy
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
    problems = []
    for mirror in mirrors:
        # A name no other process uses, machines sharing the folder included.
        partial = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        try:
            with urllib.request.urlopen(mirror + name, timeout=60) as response, open(partial, "xb") as file:
                shutil.copyfileobj(response, file)
                file.flush()
                os.fsync(file.fileno())
            if file_sha256(partial) == expected:
                os.replace(partial, target)  # only a verified file ever gets the final name
                return
            problems.append(f"{mirror}{name}: wrong SHA-256")
        # OSError: no network, DNS, HTTP errors, refused or reset connections, timeouts. HTTPException: a
        # response cut short (IncompleteRead) or garbled. Either way the next mirror may do better.
        except (OSError, http.client.HTTPException) as error:
            problems.append(f"{mirror}{name}: {' '.join(str(error).split()) or type(error).__name__}")
        finally:
            partial.unlink(missing_ok=True)
    raise MissingDataError(f"cannot download {name} ({'; '.join(problems) or 'no mirror'})")


@contextmanager
def download_lock(root: Path) -> Iterator[None]:
    """Hold the data folder's download lock: one process per machine downloads, the others wait for it."""
    with open(root / LOCK, "a") as file:
        if fcntl is not None:
            fcntl.flock(file, fcntl.LOCK_EX)  # released when the file is closed, even by a killed process
        yield


def fetch_mnist(root: Path, checksums: dict[str, str], mirrors: Sequence[str] = MIRRORS) -> None:
    """Make sure every file of ``checksums`` is in ``root`` with that SHA-256, downloading missing ones."""
    root.mkdir(parents=True, exist_ok=True)
    if not all((root / name).is_file() for name in checksums):
        with download_lock(root):
            # Checked again under the lock: the process it waited for has fetched them, or failed to.
            for name, expected in checksums.items():
                if (root / name).is_file():
                    continue
                try:
                    download(name, root / name, expected, mirrors)
                except MissingDataError as error:
                    missing = ", ".join(name for name in checksums if not (root / name).is_file())
                    hint = f"Download {missing} from {' or '.join(mirrors)} and put them in {root}/"
                    raise MissingDataError(f"{error}. {hint}") from None
    for name, expected in checksums.items():
        if file_sha256(root / name) != expected:
            raise MissingDataError(f"{root / name} has the wrong SHA-256: delete it to download it again")


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
