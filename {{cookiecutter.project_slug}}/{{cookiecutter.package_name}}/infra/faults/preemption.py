"""Stopping cleanly when asked to: SIGTERM, Ctrl-C and SLURM's time-limit signal, in every command.

Runs are stopped with signals: SIGTERM (``kill``, ``docker stop``, Kubernetes, SLURM preemption), SIGINT
(Ctrl-C) and, on SLURM, SIGUSR1 shortly before the time limit (``#SBATCH --signal``). The handlers here
only record the signal. Saving from inside a handler, as Lightning's own handlers do, is a collective in
DDP and deadlocks when the ranks are signalled at different moments. :class:`PreemptionCheckpoint` has the
ranks agree after a batch instead: in ``fit`` they save ``last.ckpt`` together and stop, after SIGUSR1 in a
SLURM job rank 0 also requeues the job, whose next attempt resumes this run (``scripts/slurm/train.sbatch``);
``validate``, ``test`` and ``predict`` stop at their next batch, writing nothing. A checkpoint write that
failed (a full disk) stops a run the same way.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_only

from .checkpointing import CheckpointWriteError
from .signals import REQUEUE_SIGNAL, catch_stop_signals, received, requeue_job

RESUME_HINT = "resume with: python train.py fit --ckpt_path last"
STOP, REQUEUE, WRITE_FAILED = 1, 2, 3  # what the ranks agree on, the larger wins
# How the run stopped, for the line it exits with: whether it saved, and whether SLURM requeued the job.
outcome: dict[str, Any] = {"saved": True, "requeued": None}


def wanted(trainer: pl.Trainer | None = None) -> int:
    """What this process asks for: 0 (carry on), STOP, REQUEUE (SIGUSR1 in a SLURM job) or WRITE_FAILED."""
    if trainer is not None and getattr(trainer.strategy.checkpoint_io, "failure", None) is not None:
        return WRITE_FAILED
    if not received:
        return 0
    return REQUEUE if REQUEUE_SIGNAL in received and "SLURM_JOB_ID" in os.environ else STOP


class PreemptionCheckpoint(Callback):
    """On a stop signal, writes ``last.ckpt`` where ``--ckpt_path last`` looks for it, then stops the run.

    After each training batch the ranks agree (an all-reduce, which every DDP rank reaches at the same step;
    a single process just reads its flag) on whether any of them was signalled, save together where
    Lightning's own step checkpoints go, and stop before the next batch, once that step is logged. After the
    last batch of an epoch the epoch-end ``last.ckpt`` is awaited instead, and the run stops when the next
    epoch starts. The command line then exits with status 128 + the signal and a one-line hint. Outside
    ``fit``, the ranks agree at the start and after every batch, and stop without saving.

    Args:
        filename: Name of the checkpoint, in the directory of the first ModelCheckpoint callback.
    """

    def __init__(self, filename: str = "last.ckpt") -> None:
        self.filename = filename
        self.saved = False

    def _install(self) -> None:
        # The Trainer installs its own handlers just before the sanity check; ours go back on top.
        if threading.current_thread() is threading.main_thread():
            catch_stop_signals()

    def _agreed(self, trainer: pl.Trainer) -> int:
        if trainer.world_size == 1:
            action = wanted(trainer)
        else:
            flag = torch.tensor(float(wanted(trainer)), device=trainer.strategy.root_device)
            action = int(trainer.strategy.reduce(flag, reduce_op="max"))
        if action == WRITE_FAILED:
            failure = trainer.strategy.checkpoint_io.failure
            raise failure or CheckpointWriteError(0, "another process could not write a checkpoint")
        return action

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.saved = False
        self._install()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return
        action = self._agreed(trainer)
        if not action:
            return
        directories = [cb.dirpath for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
        outcome["saved"] = bool(directories) and directories[0] is not None
        if outcome["saved"]:
            path = Path(directories[0]) / self.filename
            # Every rank calls save_checkpoint (it synchronises them); only rank 0 writes the file.
            trainer.save_checkpoint(path, weights_only=False)
            rank_zero_info(f"{signal_name()} received: saved {path}")
        if action == REQUEUE:
            requeue()
        self.saved = True

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.saved:
            raise SIGTERMException

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A signal during the last batch or validation: last.ckpt of the epoch just ended is the resume point.
        if trainer.current_epoch > 0 and (action := self._agreed(trainer)):
            outcome["saved"] = bool(trainer.checkpoint_callbacks)
            rank_zero_info(f"{signal_name()} received: the end-of-epoch last.ckpt is the resume point")
            if action == REQUEUE:
                requeue()
            raise SIGTERMException

    def _stop_evaluating(self, trainer: pl.Trainer) -> None:
        """Outside ``fit`` (validate, test, predict): stop at once if any process was asked to."""
        if trainer.state.fn != "fit" and self._agreed(trainer):
            raise SIGTERMException

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()
        self._stop_evaluating(trainer)

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self._stop_evaluating(trainer)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()
        self._stop_evaluating(trainer)

    def on_test_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self._stop_evaluating(trainer)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()
        self._stop_evaluating(trainer)

    def on_predict_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self._stop_evaluating(trainer)


def signal_name() -> str:
    """The name of the first stop signal received, e.g. ``SIGTERM``."""
    return signal.Signals(received[0]).name if received else "stop signal"


@rank_zero_only
def requeue() -> None:
    """Requeue this SLURM job, once, from rank 0."""
    outcome["requeued"] = requeue_job()
    if outcome["requeued"]:
        rank_zero_info(f"requeued SLURM job {os.environ['SLURM_JOB_ID']}")


def hint_for(subcommand: str | None) -> str:
    """What a command stopped by a signal says on its way out: how to go on."""
    if subcommand in (None, "fit"):
        return RESUME_HINT
    return f"it did not finish; run `python train.py {subcommand} ...` again"


def exit_after_stop_signal(resume_hint: str) -> None:
    """Exit like a process killed by the signal (128 + its number), saying how to go on (``cli.main``).

    Lightning ends a run stopped by SIGTERM with status 0, which tells a scheduler the job is done.
    """
    signum = received[0] if received else signal.SIGTERM
    if rank_zero_only.rank == 0:
        if outcome["requeued"]:
            said = "requeued"
        elif outcome["requeued"] is False:
            said = f"the requeue failed; {resume_hint}"
        elif resume_hint == RESUME_HINT and not outcome["saved"]:
            said = "nothing was saved (checkpointing is off)"
        else:
            said = resume_hint
        print(f"stopped by {signal_name()}: {said}", file=sys.stderr)
    sys.exit(128 + signum)
