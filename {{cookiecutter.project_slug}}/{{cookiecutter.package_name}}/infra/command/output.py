"""What a run prints: bars on a terminal, a line per epoch elsewhere, and no noise that does not apply."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    """Progress bars redrawn every ``refresh_rate`` batches on a terminal; a line per epoch in a log file.

    A bar written to a file (a SLURM log, CI, ``| tee``) is not redrawn but appended, every refresh, so a
    short run fills its log with hundreds of kilobytes of carriage returns. Without a terminal the bars
    are off and each epoch ends with one line: its number and the metrics the bar would show.

    Args:
        refresh_rate: Batches between redraws of the bars; 0 turns all progress output off.
        leave: Keep the finished bar of each epoch on screen.
    """

    def __init__(self, refresh_rate: int = 10, leave: bool = False) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave)
        self.interactive = sys.stdout.isatty()

    @property
    def is_disabled(self) -> bool:
        return super().is_disabled or not self.interactive

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.is_enabled and not self.interactive and trainer.is_global_zero:
            metrics = self.get_metrics(trainer, pl_module)
            metrics.pop("v_num", None)
            values = ", ".join(f"{name} {format_value(value)}" for name, value in metrics.items())
            # To standard output, where the bars would have gone.
            print(f"epoch {trainer.current_epoch}: {values}", flush=True)


def format_value(value: object) -> str:
    """Numbers with four significant digits, anything else as it is."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class DropAdvertisements(logging.Filter):
    """Drops Lightning's "Tip: try installing ..." messages, which are advertisements, not advice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


def quiet_known_noise() -> None:
    """Silence messages that do not apply to this project, so that real warnings stand out."""
    # In-memory data needs no DataLoader workers (data.num_workers sets them where it helps); the pytree
    # deprecation comes from inside Lightning 2.6 on torch >= 2.9, not from this project.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # Small data sets have fewer batches an epoch than the logging interval; epoch metrics are logged anyway.
    warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*", category=FutureWarning)
    if "SLURM_JOB_ID" not in os.environ:
        # Lightning suggests srun whenever it is installed; only inside a SLURM job is that advice.
        warnings.filterwarnings("ignore", "The `srun` command is available")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(DropAdvertisements())
    # Lightning announces its SLURM requeue handler even when it leaves the signal to preemption.py's.
    logging.getLogger("pytorch_lightning.trainer.connectors.signal_connector").setLevel(logging.WARNING)
