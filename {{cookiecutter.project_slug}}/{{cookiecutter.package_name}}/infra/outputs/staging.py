"""Replace a folder whole: its new content is written beside it and swapped in only once complete."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..faults.durable import current_umask, fsync_directory


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A new, empty folder beside ``target`` that replaces ``target`` when the block ends without error.

    Whatever stops the block early (an exception, ``sys.exit``, Ctrl-C), the new folder is removed and
    ``target`` is left as it was. ``target`` holds its old content or its new, never a mix of both nor a
    half-written file: the swap is two renames, between which it is absent for an instant.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it private to its owner
        yield staging
        # Durable before they become visible: a power loss after the rename must not leave empty files.
        for path in staging.iterdir():
            with open(path, "rb") as file:
                os.fsync(file.fileno())
        fsync_directory(staging)
        if not target.exists():
            os.rename(staging, target)
        else:
            # rename(2) replaces only an empty folder: move the old one aside first, onto an empty one.
            retired = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            os.replace(target, retired)
            try:
                os.rename(staging, target)
            except BaseException:
                os.replace(retired, target)
                raise
            shutil.rmtree(retired)
        fsync_directory(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already once it has been swapped in
