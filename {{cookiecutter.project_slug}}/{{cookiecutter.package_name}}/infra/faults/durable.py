"""Files that are whole or absent: written beside their target, fsynced, and renamed over it.

A crash, a kill or a full disk at any moment leaves the old file or the new one, never half of either; the
rename itself is made durable by fsyncing the folder. Used for checkpoints, exports, sweep records and run
records alike.
"""

from __future__ import annotations

import glob
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path


def current_umask() -> int:
    """The process's umask (reading it means setting it, so set it straight back)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace(target: Path, fill: Callable[[Path], None], mode: int | None = None) -> None:
    """Fill a temporary file beside ``target`` (``fill`` writes and fsyncs it), then rename it over it.

    ``mode`` gives the file its permissions (default: the usual ones under the umask), which a temporary file
    lacks. Temporary files of earlier writes of ``target`` that a kill interrupted are removed; those of
    writers still running (another sweep worker writing the same file) are theirs to rename.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = f".{target.name}.{socket.gethostname()}.{os.getpid()}."
    handle, name = tempfile.mkstemp(prefix=writer, suffix=".tmp", dir=target.parent)
    temporary = Path(name)
    try:
        os.fchmod(handle, 0o666 & ~current_umask() if mode is None else mode)
        os.close(handle)
        fill(temporary)
        os.replace(temporary, target)
    except BaseException:
        # Whatever went wrong (a full disk, an exception while pickling), the old file stays intact.
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)
    for temporary in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if abandoned(temporary, target):
            temporary.unlink(missing_ok=True)


def abandoned(temporary: Path, target: Path) -> bool:
    """Whether ``temporary`` (``.<target>.<host>.<pid>.<random>.tmp``) is of an ended writer of this host."""
    host, _, pid = temporary.name[len(target.name) + 2 : -len(".tmp")].rpartition(".")[0].rpartition(".")
    if os.name != "posix" or host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's writer (a shared disk), or a name this code does not write
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, as another user's
        pass
    return False


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole, as UTF-8: a reader at any moment sees the old text or the new."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole: a reader at any moment sees the old content or the new."""

    def fill(temporary: Path) -> None:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())

    replace(path, fill)
