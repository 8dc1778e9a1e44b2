"""What tests plug into real ``train.py`` runs: faults at chosen moments, and a throughput measurement.

Used from the command line of a real run, e.g.
``--trainer.callbacks+=probes.KillAt --trainer.callbacks.init_args.hook=validation``, with this folder on
PYTHONPATH. A process that kills itself with SIGKILL at a precise point stands in for the OOM killer, a
lost node or ``kill -9`` arriving at that point.
"""

from __future__ import annotations

import atexit
import errno
import io
import json
import os
import signal
import time
from typing import Any, BinaryIO

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from {{ cookiecutter.package_name }}.infra.faults.checkpointing import AtomicCheckpointIO
from {{ cookiecutter.package_name }}.infra.outputs.batches import split_batch

SIGNALS = {name: getattr(signal, name) for name in ("SIGKILL", "SIGTERM", "SIGINT", "SIGUSR1")}


def option(kind: str, **init_args: object) -> list[str]:
    """The command-line options that add ``kind`` from here to a run: the checkpoint plugin or a callback."""
    if kind in ("KillDuringWrite", "DiskFullAt", "RecordSaves"):
        options = [f"--trainer.plugins=probes.{kind}"]
        return options + [f"--trainer.plugins.init_args.{key}={value}" for key, value in init_args.items()]
    options = [f"--trainer.callbacks+=probes.{kind}"]
    return options + [f"--trainer.callbacks.init_args.{key}={value}" for key, value in init_args.items()]


class KillAt(Callback):
    """Sends ``signal`` (``times`` in a row) to this process at batch ``batch`` of ``hook`` in ``epoch``.

    ``hook`` is a loop (``train``, ``validation``, ``test``, ``predict``), or ``setup``: before any loop
    starts. The checkpoints asked for before that point are on disk first: they are written in the
    background, and a kill that lands while one is being written is ``KillDuringWrite``'s case.
    """

    def __init__(
        self, hook: str = "train", epoch: int = 1, batch: int = 2, signal: str = "SIGKILL", times: int = 1
    ) -> None:
        self.hook, self.epoch, self.batch = hook, epoch, batch
        self.signal, self.times = SIGNALS[signal], times

    def _maybe_kill(self, trainer: pl.Trainer, hook: str, batch_idx: int) -> None:
        chosen = (hook, trainer.current_epoch, batch_idx) == (self.hook, self.epoch, self.batch)
        if chosen and trainer.is_global_zero and not trainer.sanity_checking:
            if isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO):
                trainer.strategy.checkpoint_io.wait()
            for _ in range(self.times):
                os.kill(os.getpid(), self.signal)

    def setup(self, trainer: pl.Trainer, module: Any, stage: str) -> None:
        self._maybe_kill(trainer, "setup", 0)

    def on_test_batch_end(self, trainer: pl.Trainer, module: Any, *args: Any, **kwargs: Any) -> None:
        self._maybe_kill(trainer, "test", args[2])

    def on_predict_batch_end(self, trainer: pl.Trainer, module: Any, *args: Any, **kwargs: Any) -> None:
        self._maybe_kill(trainer, "predict", args[2])

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


class NanAt(Callback):
    """Makes every weight NaN in process ``rank`` only, before training step ``step``: a loss gone bad there,
    whatever the model and its inputs.
    """

    def __init__(self, step: int = 2, rank: int = 1) -> None:
        self.step, self.rank = step, rank

    def on_train_batch_start(self, trainer: pl.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
        if (trainer.global_step, trainer.global_rank) == (self.step, self.rank):
            with torch.no_grad():
                for weight in module.parameters():
                    if weight.is_floating_point():
                        weight.fill_(float("nan"))


class RecordLosses(Callback):
    """Writes the loss of every training step, as ``training_step`` returned it, to ``path`` (JSON)."""

    def __init__(self, path: str) -> None:
        self.path, self.losses = path, []

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append({"epoch": trainer.current_epoch, "loss": float(loss)})

    def on_train_end(self, trainer: pl.Trainer, module: Any) -> None:
        with open(self.path, "w", encoding="utf-8") as file:
            json.dump(self.losses, file)


class KillDuringWrite(AtomicCheckpointIO):
    """Writes half of the ``write``-th checkpoint file of the run, then kills the process with SIGKILL.

    Counts files written, whatever their name: a save that is a link to a file just written (``last.ckpt``
    after a new best) writes none.
    """

    def __init__(self, write: int = 2) -> None:
        super().__init__()
        self.kill_at, self.written = write, 0

    def write(self, checkpoint: dict[str, Any], file: BinaryIO) -> None:
        self.written += 1
        if self.written == self.kill_at:
            buffer = io.BytesIO()
            super().write(checkpoint, buffer)
            file.write(buffer.getvalue()[: buffer.tell() // 2])
            file.flush()
            os.fsync(file.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        super().write(checkpoint, file)


class RecordSaves(AtomicCheckpointIO):
    """Writes the name of each checkpoint saved, and its epoch, to ``path`` (JSON lines) as it is saved."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps({"name": os.path.basename(path), "epoch": checkpoint["epoch"]}) + "\n")
        super().save_checkpoint(checkpoint, path, storage_options)


class DiskFullAt(AtomicCheckpointIO):
    """Fails the ``write``-th checkpoint file of the run, and every one after, as a full disk does."""

    def __init__(self, write: int = 2) -> None:
        super().__init__()
        self.fail_from, self.written = write, 0

    def write(self, checkpoint: dict[str, Any], file: BinaryIO) -> None:
        self.written += 1
        if self.written >= self.fail_from:
            file.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().write(checkpoint, file)


class SignalAtExit(Callback):
    """Sends ``signal`` to this process as it exits (from an exit handler): a Ctrl-C pressed again then."""

    def __init__(self, signal: str = "SIGINT") -> None:
        self.signal = SIGNALS[signal]

    def setup(self, trainer: pl.Trainer, module: Any, stage: str) -> None:
        atexit.register(lambda: (os.kill(os.getpid(), self.signal), time.sleep(1)))


class FailOnce(Callback):
    """Fails the run as missing data would, once: the first run that finds no file at ``path`` writes it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_start(self, trainer: pl.Trainer, module: Any) -> None:
        if not os.path.exists(self.path):
            open(self.path, "w").close()
            raise MisconfigurationException(f"data folder {self.path}: the disk is not mounted")


class Throughput(Callback):
    """Writes the training samples per second, after ``warmup`` batches (CUDA start-up), to ``path``."""

    def __init__(self, path: str, warmup: int = 5) -> None:
        self.path, self.warmup, self.samples, self.start = path, warmup, 0, 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            synchronize()
            self.start, self.samples = time.perf_counter(), 0
        elif trainer.global_step > self.warmup:
            self.samples += len(split_batch(module, batch)[0][0])

    def on_train_end(self, trainer: pl.Trainer, module: Any) -> None:
        synchronize()
        speed = self.samples / (time.perf_counter() - self.start)
        with open(self.path, "w", encoding="utf-8") as file:
            json.dump({"samples_per_second": speed}, file)


def synchronize() -> None:
    """Wait for the GPU's queued work, so that the clock measures it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
