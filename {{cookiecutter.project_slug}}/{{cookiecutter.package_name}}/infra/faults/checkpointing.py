"""Checkpoints that survive crashes, kills and preemption.

:class:`AtomicCheckpointIO` writes every checkpoint to a temporary file beside the target, fsyncs it and
renames it over the target: a crash at any moment leaves the old file or the new one, never half. It writes
on a background thread, so that training does not wait for the disk, and writes the same training state
once: saved under a second name (``last.ckpt`` after a new best), it is a hard link. When checkpoints are
written is ``checkpoint_callbacks.py``'s.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from .durable import current_umask, replace

# Checkpoints copied to memory and waiting for the disk, at most: a slow disk slows training rather than
# filling the memory.
MAX_PENDING_COPIES = 2


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves checkpoints atomically, in their own directory.

    Lightning's default stages the file in ``$TMPDIR`` and moves it, which is a copy (not atomic) when the
    two are on different filesystems, and never fsyncs. Here the temporary file lives next to the target,
    so ``os.replace`` is an atomic rename on POSIX, and the directory is fsynced so the rename itself
    survives a power loss.

    Serialising and fsyncing happen on one background thread, in the order the saves and removals were
    asked for. The checkpoint is first copied to CPU memory, since the next steps change the weights in
    place. Loading a checkpoint and the end of the run wait for the writes. A write that fails (a full disk)
    cancels the removals queued after it, so the checkpoint it was to replace stays; ``failure`` says so at
    once (``preemption.py`` stops the run at its next batch), and the next save, load or the end of the run
    raises it, as a :class:`CheckpointWriteError` naming the file and the free space.

    An epoch that finds a new best saves the same state twice, as the best and as ``last.ckpt``. The second
    save (same epoch, step and contents listed) becomes a hard link to the first file, given its name by an
    atomic rename too; where the filesystem has no hard links, a copy. Every checkpoint is replaced by a
    rename, never rewritten in place, so the two names never change each other.

    Args:
        background: Write on a background thread; False writes before ``save_checkpoint`` returns.
    """

    def __init__(self, background: bool = True) -> None:
        super().__init__()
        self.background = background
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Future, bool]] = []  # each task, and whether it holds a checkpoint copy
        # The latest save: its training state, its file, and the write of that file (None if synchronous).
        self._last_save: tuple[tuple, Path, Future | None] | None = None
        # Read here: reading the umask sets it, which the writer thread must not do while files are made.
        self._mode = 0o666 & ~current_umask()
        self.failure: CheckpointWriteError | None = None  # the first write that failed, set by the writer

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        target = Path(path)
        # What tells two saves of one state apart; a weights-only checkpoint lacks the optimizer and loops.
        state = (checkpoint.get("epoch"), checkpoint.get("global_step"), tuple(checkpoint))
        if self._last_save is not None and self._last_save[0] == state and self._last_save[1] != target:
            _, source, written = self._last_save
            self._last_save = (state, target, self._submit(self._link, written, source, target))
        else:
            copied = snapshot(checkpoint) if self.background else checkpoint
            self._last_save = (state, target, self._submit(self._save, copied, target, holds_copy=True))

    def remove_checkpoint(self, path: Any) -> None:
        if self._last_save is not None and self._last_save[1] == Path(path):
            self._last_save = None
        # Queued behind the saves: the best checkpoint is removed only once its successor is on disk.
        self._submit(self._remove, path)

    def load_checkpoint(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.wait()
        return super().load_checkpoint(*args, **kwargs)

    def teardown(self) -> None:
        self.wait()
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None

    def wait(self) -> None:
        """Wait for every write asked for so far; raise the first that failed."""
        pending, self._pending = self._pending, []
        for task, _ in pending:
            task.result()

    def _submit(self, function: Callable[..., None], *args: Any, holds_copy: bool = False) -> Future | None:
        if not self.background:
            function(*args)
            return None
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        # Raised here, a failed earlier write stops the run at its next checkpoint. Only copies waiting
        # for the disk make training wait; removals and links queue freely.
        while self._pending and (
            self._pending[0][0].done()
            or (holds_copy and sum(held for _, held in self._pending) >= MAX_PENDING_COPIES)
        ):
            self._pending.pop(0)[0].result()
        task = self._writer.submit(function, *args)
        self._pending.append((task, holds_copy))
        return task

    def _save(self, checkpoint: dict[str, Any], target: Path) -> None:
        self._replace(target, lambda temporary: self._write_file(checkpoint, temporary))

    def _replace(self, target: Path, fill: Callable[[Path], None]) -> None:
        try:
            replace(target, fill, self._mode)
        except OSError as error:
            written_before = isinstance(error, CheckpointWriteError)  # the file this one links to failed
            failure = error if written_before else CheckpointWriteError.of(target, error)
            self.failure = self.failure or failure
            raise failure from error

    def _remove(self, path: Any) -> None:
        if self.failure is None:  # else the file to remove may be the last good one of its kind
            super().remove_checkpoint(path)

    def _link(self, written: Future | None, source: Path, target: Path) -> None:
        """Give the file ``written`` to ``source`` the name ``target`` too, if that write succeeded."""
        if written is not None:
            written.result()  # done already (one thread writes in order); raises if it failed

        def link(temporary: Path) -> None:
            temporary.unlink()
            try:
                os.link(source, temporary)
            except OSError:  # no hard links here (FAT, some network filesystems): a copy, fsynced
                with open(source, "rb") as original, open(temporary, "wb") as file:
                    shutil.copyfileobj(original, file)
                    file.flush()
                    os.fsync(file.fileno())

        self._replace(target, link)

    def _write_file(self, checkpoint: dict[str, Any], temporary: Path) -> None:
        with open(temporary, "wb") as file:
            self.write(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())

    def write(self, checkpoint: dict[str, Any], file: BinaryIO) -> None:
        """Serialise ``checkpoint`` into an open file (the tests override this to inject failures)."""
        torch.save(checkpoint, file)


class CheckpointWriteError(OSError):
    """A checkpoint could not be written: its file, the reason and the free space, in one line."""

    @classmethod
    def of(cls, target: Path, error: OSError) -> CheckpointWriteError:
        try:
            free = f"{shutil.disk_usage(target.parent).free / 2**20:.1f} MiB free there"
        except OSError:
            free = "free space unknown"
        reason = error.strerror or str(error)
        return cls(
            error.errno,
            f"could not write checkpoint {target}: {reason} ({free}); the checkpoints written before it are"
            " intact",
        )

    def __str__(self) -> str:
        return self.strerror


def snapshot(value: Any) -> Any:
    """``value`` with every tensor in it copied to CPU memory, which later in-place updates do not change.

    Dicts (of their own type, with their attributes: a state dict's ``_metadata``) and lists are copied;
    anything else is shared. Lightning's generic ``apply_to_collection`` took 10x longer on a checkpoint.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        copied = copy.copy(value)
        for key, item in value.items():
            copied[key] = snapshot(item)
        return copied
    if isinstance(value, list):
        return [snapshot(item) for item in value]
    if type(value) is tuple:
        return tuple(snapshot(item) for item in value)
    return value
