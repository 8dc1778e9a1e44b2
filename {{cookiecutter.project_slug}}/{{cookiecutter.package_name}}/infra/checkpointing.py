"""Checkpoints that survive crashes, kills and preemption.

- :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file beside the target, fsyncs it
  and renames it over the target: a crash at any moment leaves the old file or the new one, never half.
- :class:`PreemptionCheckpoint` saves ``last.ckpt`` when the run receives SIGTERM (what ``kill``, SLURM and
  Kubernetes send before killing a job), so that ``--ckpt_path last`` resumes from there.
- :class:`RandomStateCheckpoint` stores the random number generators in every checkpoint, so that a resumed
  run shuffles and drops out exactly as an uninterrupted one would.
"""

from __future__ import annotations

import glob
import os
import random
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_only

RESUME_HINT = "resume with: python train.py fit --ckpt_path last"


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


class PreemptionCheckpoint(Callback):
    """On SIGTERM, writes ``last.ckpt`` where ``--ckpt_path last`` looks for it, then stops the run.

    The signal only sets a flag. After each training batch the ranks agree (an all-reduce, which every DDP
    rank reaches at the same step) on whether any of them received it, save together where Lightning's
    own step checkpoints are saved, and stop with ``SIGTERMException`` before the next batch, once that
    step is logged. After the last batch of an epoch the epoch-end ``last.ckpt`` is awaited instead, and the
    run stops when the next epoch starts. The command line then exits with status 143 and a one-line hint.
    Lightning's own SIGTERM handler is replaced: it broadcasts from inside the signal handler, which
    deadlocks DDP when the ranks are signalled at different moments, and it saves nothing.

    Args:
        filename: Name of the checkpoint, in the directory of the first ModelCheckpoint callback.
    """

    def __init__(self, filename: str = "last.ckpt") -> None:
        self.filename = filename
        self.received = False
        self.saved = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The Trainer installs its handlers just before training and restores the previous ones after.
        self.received = self.saved = False
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._flag)

    def _flag(self, signum: int, frame: object) -> None:
        self.received = True

    def _any_rank_received(self, trainer: pl.Trainer) -> bool:
        flag = torch.tensor(float(self.received), device=trainer.strategy.root_device)
        return bool(trainer.strategy.reduce(flag, reduce_op="max"))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch or not self._any_rank_received(trainer):
            return
        directories = [cb.dirpath for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
        if directories and directories[0] is not None:
            path = Path(directories[0]) / self.filename
            # Every rank calls save_checkpoint (it synchronises them); only rank 0 writes the file.
            trainer.save_checkpoint(path, weights_only=False)
            rank_zero_info(f"SIGTERM received: saved {path}")
        self.saved = True

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.saved:
            raise SIGTERMException

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A signal during the last batch or validation: last.ckpt of the epoch just ended is the resume point.
        if trainer.current_epoch > 0 and self._any_rank_received(trainer):
            rank_zero_info("SIGTERM received: the end-of-epoch last.ckpt is the resume point")
            raise SIGTERMException


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
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def exit_after_sigterm() -> None:
    """Exit like a process killed by SIGTERM (status 143), saying how to resume (``cli.main``).

    Lightning ends a run stopped by SIGTERM with status 0, which tells a scheduler the job is done;
    PreemptionCheckpoint has saved last.ckpt by now.
    """
    if rank_zero_only.rank == 0:
        print(f"stopped by SIGTERM: {RESUME_HINT}", file=sys.stderr)
    sys.exit(128 + signal.SIGTERM)
