"""Checkpoints that survive crashes, kills and preemption.

- :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file beside the target, fsyncs it
  and renames it over the target: a crash at any moment leaves the old file or the new one, never half.
- :class:`RandomStateCheckpoint` stores the random number generators in every checkpoint, so that a resumed
  run shuffles and drops out exactly as an uninterrupted one would.
"""

from __future__ import annotations

import glob
import os
import random
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves checkpoints atomically, in their own directory.

    Lightning's default stages the file in ``$TMPDIR`` and moves it, which is a copy (not atomic) when the
    two are on different filesystems, and never fsyncs. Here the temporary file lives next to the target,
    so ``os.replace`` is an atomic rename on POSIX, and the directory is fsynced so the rename itself
    survives a power loss.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            # mkstemp creates the file readable by its owner only; give it the usual permissions.
            os.fchmod(handle, 0o666 & ~current_umask())
            with os.fdopen(handle, "wb") as file:
                self.write(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            # Whatever went wrong (a full disk, an exception while pickling), the old file stays intact.
            Path(temporary).unlink(missing_ok=True)
            raise
        fsync_directory(target.parent)
        # Temporary files of earlier writes of this target that a SIGKILL interrupted (only rank 0 writes).
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            stale.unlink(missing_ok=True)

    def write(self, checkpoint: dict[str, Any], file: BinaryIO) -> None:
        """Serialise ``checkpoint`` into an open file (the tests override this to inject failures)."""
        torch.save(checkpoint, file)


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


class RandomStateCheckpoint(Callback):
    """Saves the random number generators with each checkpoint and restores them on resume.

    Lightning restores weights, optimizer, schedule and loop counters, but not the generators that shuffle
    the training data and draw dropout masks; without them a resumed run drifts away from an uninterrupted
    one. The states are plain tensors and integers, so checkpoints still load with ``weights_only=True``.
    """

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        if "cuda" in state_dict and torch.cuda.is_available():
            # A run saved on more GPUs than this one has (a resume or an evaluation on fewer): one each.
            for device, cuda_state in enumerate(state_dict["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, device)
