"""A callback noting when each epoch starts and ends: epoch times from inside a run.

The slope between two runs cancels start-up out but carries its noise (a second of imports, give or take);
these times carry none. ``run.py`` adds it to every Lightning run alike.

With ``turns``, runs started together take turns round a ring of pipes, one epoch each: a run waits for
the one before it to end an epoch before it starts its own (turns.py), so the epochs of one round run within
a second of each other on the same machine. The machine's speed drifts by up to 1.5x over minutes; over one
round it barely does.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytorch_lightning as pl

# How long a run pauses, after noting the end of its epoch, before it hands the turn on. Torch's OpenMP
# threads keep spinning on their cores for a few milliseconds after their last parallel operation: a run
# that ends its epoch on one (stock Lightning) would hand on a machine with a core taken. Three identical
# default runs after stock cost 19.9, 13.2 and 14.6 ms an epoch more than stock without a pause; 13.2,
# 15.7 and 15.4 ms with this one.
HAND_ON_PAUSE = 0.01


class EpochClock(pl.Callback):
    """Writes the ``[start, end]`` time of each epoch into ``path`` (JSON) when training ends.

    Args:
        path: The JSON file to write.
        turns: ``"<read fd>,<write fd>"``: pipes from the run before and to the run after. A byte read means
            "your turn"; one written hands the turn on. A pipe closed by the run before's end means: no more
            waiting.
    """

    def __init__(self, path: str, turns: str | None = None) -> None:
        self.path = Path(path)
        self.epochs: list[list[float]] = []
        self.turn_in, self.turn_out = (int(fd) for fd in turns.split(",")) if turns else (None, None)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.epochs:
            self._epoch_ended(trainer)
        self._wait_for_turn()
        self.epochs.append([time.perf_counter()])

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_ended(trainer)
        self.path.write_text(json.dumps(self.epochs), encoding="utf-8")
        if self.turn_out is not None:
            os.close(self.turn_out)
            self.turn_out = None

    def _epoch_ended(self, trainer: pl.Trainer) -> None:
        """The end of an epoch is the start of the next (everything Lightning does in between belongs to
        the epoch). Checkpoints still being written in the background are waited for: while the next run
        takes its turn, they would be done on its time. The turn is handed on after HAND_ON_PAUSE, which
        belongs to no epoch.
        """
        wait = getattr(trainer.strategy.checkpoint_io, "wait", None)
        if self.turn_out is not None and wait is not None:
            wait()
        self.epochs[-1].append(time.perf_counter())
        if self.turn_out is not None:
            time.sleep(HAND_ON_PAUSE)
            try:
                os.write(self.turn_out, b"x")
            except BrokenPipeError:  # the next run has ended
                self.turn_out = None

    def _wait_for_turn(self) -> None:
        if self.turn_in is not None and not os.read(self.turn_in, 1):
            self.turn_in = None  # the run before has ended
