"""What every checkpoint says about itself: the model and data classes that made it, and what the data gave.

Read back by ``--ckpt_path`` (a checkpoint used with other data is refused), ``predict`` and ``export.py``,
without the data. Plain values only, so that checkpoints still load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

RECORD = "record"  # the checkpoint's key


class CheckpointRecord(Callback):
    """Writes ``record`` into every checkpoint the run saves. Added by the command line, not the config."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RECORD] = self.record


def recorded_data_args(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The values the data gave the model a checkpoint was saved from.

    Its record has them all; a checkpoint without one (saved outside this project's command line) has
    those the model took among its hyperparameters.
    """
    record = checkpoint.get(RECORD) or {}
    if "data_args" in record:
        return record["data_args"]
    hparams = checkpoint.get("hyper_parameters") or {}
    return {key: value for key, value in hparams.items() if not key.startswith("_")}
