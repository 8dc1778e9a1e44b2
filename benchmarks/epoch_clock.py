"""A callback noting when each epoch starts and when training ends: epoch times from inside a run.

The slope between two runs cancels start-up out but carries its noise (a second of imports, give or take);
these times carry none. ``run.py`` adds it to both Lightning runs, stock and default, alike.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytorch_lightning as pl


class EpochClock(pl.Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.marks: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.append(time.perf_counter())

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.append(time.perf_counter())
        self.path.write_text(json.dumps(self.marks), encoding="utf-8")
