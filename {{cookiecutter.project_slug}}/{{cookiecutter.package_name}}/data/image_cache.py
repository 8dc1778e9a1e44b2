"""The images of a folder resized once into one uint8 ``.npy`` file that later runs read instead.

The file's name holds a hash of everything its content depends on: the folder, the size the images are
resized to, and every file's name, size and modification time, so that a file added, removed or changed
makes a new one (and the old one is deleted once the new one is complete). One process builds it while the
others wait (a lock beside it): the processes of a DDP run, sweep trials started together. It is written
under a temporary name, fsynced and renamed, so a build that is killed never leaves a file a later run trusts.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

try:
    import fcntl
except ImportError:  # Windows: no lock, so processes may build side by side, each into its own file
    fcntl = None

VERSION = 1  # of the recipe that turns a file into cached pixels: a change makes every cache stale
LOCK = ".lock"  # left in place, since deleting a lock file that others wait on is racy


def cache_name(root: Path, files: Iterable[bytes], shape: tuple[int, int, int]) -> str:
    """The cache file's name for ``files`` (relative to ``root``) resized to ``shape``."""
    digest = hashlib.sha256(f"{VERSION} {root.resolve()} {shape}".encode())
    for name in files:
        status = (root / os.fsdecode(name)).stat()
        digest.update(b"\0%s\0%d\0%d" % (name, status.st_size, status.st_mtime_ns))
    return f"{family(root, shape)}-{digest.hexdigest()[:20]}.npy"


def family(root: Path, shape: tuple[int, int, int]) -> str:
    """What the names of the caches of ``root`` at ``shape`` start with, whatever its files."""
    place = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    return f"{root.resolve().name}-{place}-{'x'.join(map(str, shape))}"


@contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Hold the cache folder's lock: one process builds, the others wait for it."""
    with open(folder / LOCK, "a") as file:
        if fcntl is not None:
            fcntl.flock(file, fcntl.LOCK_EX)  # released when the file is closed, even by a killed process
        yield


def cached(folder: Path, name: str, shape: tuple[int, ...], batches: Iterable[Tensor]) -> Path | None:
    """The cache file ``folder/name``, built from ``batches`` unless a complete one is there.

    ``shape`` is the number of images, then the shape of one. None, said in one line, where the cache cannot
    be written (no room, no permission): the images are then decoded every epoch.
    """
    path = folder / name
    if path.is_file():
        return path
    size = math.prod(shape)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as error:
        rank_zero_info(f"data.cache: cannot write to {folder} ({error}); decoding the images every epoch")
        return None
    if size > free // 2:  # the cache may take half the free space, no more
        rank_zero_info(
            f"data.cache: the {shape[0]:,} resized images take {size / 1e9:.1f} GB, more than half of the "
            f"{free / 1e9:.1f} GB free in {folder}; decoding the images every epoch"
        )
        return None
    with build_lock(folder):
        if path.is_file():  # built by the process this one waited for
            return path
        rank_zero_info(f"data.cache: resizing {shape[0]:,} images once into {path}")
        partial = folder / f".{name}.{os.getpid()}.partial"
        try:
            write(partial, shape, batches)
            os.replace(partial, path)
        except OSError as error:  # a full disk, say
            rank_zero_info(f"data.cache: cannot write {path} ({error}); decoding the images every epoch")
            return None
        finally:
            partial.unlink(missing_ok=True)
        sync(folder)  # the rename is durable
        prefix = name.rsplit("-", 1)[0] + "-"
        for stale in folder.iterdir():
            if stale.name.startswith(prefix) and stale.suffix == ".npy" and stale != path:
                stale.unlink(missing_ok=True)  # a run still reading it keeps it open until it ends
    return path


def write(path: Path, shape: tuple[int, ...], batches: Iterable[Tensor]) -> None:
    """Write ``batches`` of uint8 images, in order, as one ``.npy`` array of ``shape``, synced to disk."""
    with open(path, "xb") as file:
        np.lib.format.write_array_header_1_0(
            file, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}
        )
        written = 0
        for batch in batches:
            file.write(batch.numpy().tobytes())
            written += len(batch)
        if written != shape[0]:
            raise RuntimeError(f"wrote {written} images into a cache of {shape[0]}")
        file.flush()
        os.fsync(file.fileno())


def sync(folder: Path) -> None:
    """Make the renames in ``folder`` durable (POSIX: fsync the directory)."""
    if os.name == "posix":
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
