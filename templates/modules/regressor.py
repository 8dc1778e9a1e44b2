"""The training logic: loss, metrics, optimizer and schedule around the network in ``models``."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchmetrics import MeanAbsoluteError, R2Score

from ..models.mlp import MLP


class Regressor(pl.LightningModule):
    """Trains the network to predict one number per sample, and reports loss, MAE and R² for each split.

    The network predicts the standardised target, ``(target - target_mean) / target_std``, so that its
    output is of order one whatever the target's units; ``forward`` undoes it. ``feature_names``,
    ``target_mean`` and ``target_std`` come from the data (its DataModule's ``model_args()``): the command
    line fills them in, and every checkpoint keeps them.

    Args:
        feature_names: Name of each input feature, in the order of the columns.
        target_mean: Mean of the training targets.
        target_std: Standard deviation of the training targets.
        hidden_dims: Widths of the hidden layers of the network.
        dropout: Dropout probability of the network.
        lr: Peak learning rate of AdamW; a cosine schedule decays it to zero over ``max_epochs``.
        weight_decay: AdamW weight decay.
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        target_mean: float,
        target_std: float,
        hidden_dims: Sequence[int] = (64, 32),
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        super().__init__()
        # Plain numbers and strings only, so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters()
        self.net = MLP((len(feature_names),), 1, hidden_dims, dropout)
        self.metrics = torch.nn.ModuleDict(
            {f"{split}_{name}": metric() for split in ("val", "test") for name, metric in METRICS.items()}
        )

    def forward(self, features: Tensor) -> Tensor:
        """The predicted target, in its own units, for float32 features ``(batch, len(feature_names))``."""
        return self.net(features).squeeze(-1) * self.hparams.target_std + self.hparams.target_mean

    def loss(self, predicted: Tensor, targets: Tensor) -> Tensor:
        """The training objective: mean squared error in standard deviations of the target."""
        return (((predicted - targets) / self.hparams.target_std) ** 2).mean()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        features, targets = batch
        loss = self.loss(self(features), targets)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """One row per sample (``python train.py predict``): the predicted target."""
        features, _ = batch
        return {"prediction": self(features)}

    def _evaluate(self, batch: tuple[Tensor, Tensor], split: str) -> None:
        features, targets = batch
        predicted = self(features)
        # sync_dist averages the loss over DDP processes; the torchmetrics metrics sync themselves.
        self.log(f"{split}/loss", self.loss(predicted, targets), prog_bar=True, sync_dist=True)
        for name in METRICS:
            metric = self.metrics[f"{split}_{name}"]
            metric.update(predicted, targets)
            self.log(f"{split}/{name}", metric, prog_bar=name == "r2")

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        # max_epochs is -1 for "no limit": the cosine then spans a single epoch and stays at its floor.
        epochs = max(self.trainer.max_epochs, 1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


# What validation and test report besides the loss: the error in the target's units, and the share of the
# target's variance explained.
METRICS = {"mae": MeanAbsoluteError, "r2": R2Score}
