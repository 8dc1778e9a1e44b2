"""Fault injection for the resilience tests: kill the training process at chosen moments.

Used from the command line of a real run, e.g.
``--trainer.callbacks+=faults.KillAt --trainer.callbacks.init_args.hook=validation``, with this folder on
PYTHONPATH. A process that kills itself with SIGKILL at a precise point stands in for the OOM killer, a
lost node or ``kill -9`` arriving at that point.
"""

from __future__ import annotations

import io
import os
import signal
from typing import Any, BinaryIO

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from {{ cookiecutter.package_name }}.checkpointing import AtomicCheckpointIO

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}


class KillAt(Callback):
    """Sends ``signal`` to this process at batch ``batch`` of ``hook`` (train or validation) in ``epoch``."""

    def __init__(self, hook: str = "train", epoch: int = 1, batch: int = 2, signal: str = "SIGKILL") -> None:
        self.hook, self.epoch, self.batch, self.signal = hook, epoch, batch, SIGNALS[signal]

    def _maybe_kill(self, trainer: pl.Trainer, hook: str, batch_idx: int) -> None:
        chosen = (hook, trainer.current_epoch, batch_idx) == (self.hook, self.epoch, self.batch)
        if chosen and trainer.is_global_zero and not trainer.sanity_checking:
            os.kill(os.getpid(), self.signal)

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._maybe_kill(trainer, "train", batch_idx)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._maybe_kill(trainer, "validation", batch_idx)


class KillDuringWrite(AtomicCheckpointIO):
    """Writes half of the ``save``-th checkpoint named ``name``, then kills the process with SIGKILL."""

    def __init__(self, name: str = "last.ckpt", save: int = 2) -> None:
        self.name, self.save, self.saves = name, save, 0

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        self.current = os.path.basename(path)
        super().save_checkpoint(checkpoint, path, storage_options)

    def write(self, checkpoint: dict[str, Any], file: BinaryIO) -> None:
        if self.current == self.name:
            self.saves += 1
            if self.saves == self.save:
                buffer = io.BytesIO()
                super().write(checkpoint, buffer)
                file.write(buffer.getvalue()[: buffer.tell() // 2])
                file.flush()
                os.fsync(file.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
        super().write(checkpoint, file)
