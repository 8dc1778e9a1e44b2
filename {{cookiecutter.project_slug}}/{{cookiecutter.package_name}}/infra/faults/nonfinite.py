"""A run whose loss stops being a number stops at once, before the bad step reaches the weights."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class StopOnNonFiniteLoss(Callback):
    """Stops training on every process at the first step whose loss is NaN or infinite, naming the step.

    Checked before the backward pass, so the bad step changes no weight and no checkpoint holds NaN weights.
    Under DDP the processes agree first, in one small all-reduce per step: a process that stopped alone would
    leave the others waiting in the gradient all-reduce until its timeout, half an hour. The check waits for
    the GPU once per step, which is small next to the step itself.
    """

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if trainer.world_size == 1:
            # Checked in Python: a tensor op here would cost more than the rest of the check.
            finite = finite_everywhere = math.isfinite(loss.detach().item())
        else:
            finite = torch.isfinite(loss.detach())
            # All-reduced directly: Lightning's strategy.reduce adds a barrier, a second collective.
            finite_everywhere = finite.float()
            torch.distributed.all_reduce(finite_everywhere, op=torch.distributed.ReduceOp.MIN)
        if not finite_everywhere:
            value = "not finite in another process" if finite else loss.item()
            raise FloatingPointError(
                f"the training loss is {value} at step {trainer.global_step} (epoch {trainer.current_epoch}):"
                " lower the learning rate or set trainer.gradient_clip_val"
            )
