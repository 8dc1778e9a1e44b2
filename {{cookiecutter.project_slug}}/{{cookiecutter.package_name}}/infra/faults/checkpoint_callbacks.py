"""When checkpoints are written: the best ones, and ``last.ckpt`` at a pace that short epochs cannot dictate.

Lightning's ModelCheckpoint writes the best checkpoint whenever the monitored metric improves. A second
one writing ``last.ckpt`` after every epoch costs epochs of a few milliseconds more than their training
does; :class:`LastCheckpoint` writes it after the run's first epoch, then once ``every_seconds`` have passed,
and after the run's last epoch. A stop signal saves it where the run stops (``preemption.py``), so only a
crash (``kill -9``, a lost node) goes back further: to the last write, ``every_seconds`` ago at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytorch_lightning as pl
import torch

from ..command.profiling import FixedStateKey
from .signals import received


class ModelCheckpoint(FixedStateKey, pl.callbacks.ModelCheckpoint):
    """Lightning's ModelCheckpoint with its state key computed once (``FixedStateKey``): cheaper per hook."""


class LastCheckpoint(ModelCheckpoint):
    """Writes ``last.ckpt`` (``--ckpt_path last`` resumes from it) at the end of some epochs.

    The run's first epoch, every epoch that ends ``every_seconds`` or more after the last write, and the
    run's last epoch (``max_epochs`` or early stopping): with epochs longer than ``every_seconds``, every one.

    Args:
        every_seconds: The least time between two writes; 0 writes after every epoch.
        dirpath: The folder; default: the run's ``checkpoints/``, as every ModelCheckpoint's.
    """

    def __init__(self, every_seconds: float = 60.0, dirpath: str | None = None) -> None:
        super().__init__(dirpath=dirpath, filename="last", save_top_k=1, enable_version_counter=False)
        self.every_seconds = every_seconds
        self._written_at: float | None = None

    def _due(self, trainer: pl.Trainer) -> bool:
        """Whether to write now; under DDP the processes agree, since saving is a collective."""
        last_epoch = trainer.should_stop or 0 < trainer.max_epochs <= trainer.current_epoch + 1
        waited = self._written_at is None or time.monotonic() - self._written_at >= self.every_seconds
        # A stop signal is acted on when the next epoch starts: this epoch's end is then the resume point.
        due = last_epoch or waited or bool(received)
        if trainer.world_size > 1:
            flag = torch.tensor(float(due), device=trainer.strategy.root_device)
            due = bool(trainer.strategy.reduce(flag, reduce_op="max"))
        return due

    def _write(self, trainer: pl.Trainer, save: Callable[[], None]) -> None:
        if self._due(trainer):
            save()
            if self._last_global_step_saved == trainer.global_step:
                self._written_at = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._should_save_on_train_epoch_end(trainer):
            self._write(trainer, lambda: super(LastCheckpoint, self).on_train_epoch_end(trainer, pl_module))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and not self._should_save_on_train_epoch_end(trainer):
            self._write(trainer, lambda: super(LastCheckpoint, self).on_validation_end(trainer, pl_module))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Stopped by max_steps or max_time after an epoch that was not written: its end is the resume point.
        if not self._should_skip_saving_checkpoint(trainer):  # skipped too if this step is saved already
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
