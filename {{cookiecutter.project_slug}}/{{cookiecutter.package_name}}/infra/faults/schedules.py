"""A resumed run's learning-rate schedule follows the run's new length, not the one it was saved with.

``configure_optimizers`` builds its schedulers for this run (a cosine over ``max_epochs``, say), and then
Lightning restores each scheduler's saved state over it, lengths included. A run trained for 2 epochs and
extended to 6 would keep the cosine of 2: its learning rate reaches 0 at epoch 2 and climbs again.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

# A scheduler's state that is its position in the schedule; the rest of its state is its configuration.
PROGRESS = {"last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "_is_initial"}


class ScheduleFollowsLength(Callback):
    """Keeps the schedule ``configure_optimizers`` built for this run when a checkpoint is restored.

    Before the restore, each scheduler's fresh state is noted; after it, a scheduler whose configuration
    differs (``T_max``, ``total_steps``...) gets the fresh configuration back and is replayed from its start
    to the step it had reached, so that the learning rate is the new schedule's at that step. A run resumed
    with the same length is left exactly as saved.
    """

    def __init__(self) -> None:
        self.fresh: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Called after configure_optimizers and before the checkpoint's states are restored.
        self.fresh = [copy.deepcopy(config.scheduler.state_dict()) for config in trainer.lr_scheduler_configs]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.ckpt_path is None:
            return
        for config, fresh in zip(trainer.lr_scheduler_configs, self.fresh, strict=True):
            restored = config.scheduler.state_dict()
            changed = [key for key in fresh.keys() - PROGRESS if fresh[key] != restored.get(key)]
            if changed and "base_lrs" in fresh and "last_epoch" in restored:  # a schedule by step or epoch
                replay(config.scheduler, fresh, restored["last_epoch"])


def replay(scheduler: Any, fresh: dict[str, Any], position: int) -> None:
    """Give ``scheduler`` its ``fresh`` state and step it to ``position``, setting the optimizer's rates."""
    scheduler.load_state_dict(fresh)
    for group, rate in zip(scheduler.optimizer.param_groups, fresh["base_lrs"], strict=True):
        group["lr"] = rate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": no training here
        for _ in range(position - fresh["last_epoch"]):
            scheduler.step()
