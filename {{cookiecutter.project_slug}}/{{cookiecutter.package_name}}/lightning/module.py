"""The training logic: loss, metrics, optimizer and schedule around the network in ``models``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from ..models import Classifier


class ImageClassifier(pl.LightningModule):
    """Trains a :class:`Classifier` with cross-entropy and reports loss and accuracy per split.

    ``input_shape``, ``class_names`` and ``normalization`` are the data's contract, set from the DataModule
    by the command line and stored in every checkpoint, so that a checkpoint alone says what it takes and
    what it predicts.

    Args:
        input_shape: Shape of one image, ``(channels, height, width)``.
        class_names: Name of each class, in the order of the labels.
        normalization: How raw pixels become the network's input (recorded for export, not used here).
        hidden_dims: Widths of the hidden layers of the network.
        dropout: Dropout probability of the network.
        lr: Peak learning rate of AdamW; a cosine schedule decays it to zero over ``max_epochs``.
        weight_decay: AdamW weight decay.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        class_names: Sequence[str],
        normalization: dict[str, Any] | None = None,
        hidden_dims: Sequence[int] = (64,),
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        super().__init__()
        # Plain numbers and strings only, so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters()
        num_classes = len(class_names)
        self.net = Classifier(input_shape, num_classes, hidden_dims, dropout)
        self.example_input_array = torch.zeros(1, *input_shape)
        # average="micro": the share of correctly classified samples (torchmetrics defaults to macro).
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, images: Tensor) -> Tensor:
        """Return class logits."""
        return self.net(images)

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The training objective, also reported as ``<split>/loss`` on validation and test."""
        return F.cross_entropy(logits, labels)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.loss(logits, labels)
        # update(), not a call: calling a metric also computes it for this batch, work nobody reads.
        self.train_acc.update(logits, labels)
        # Not on the progress bar: a progress-bar value is converted to a Python float at every step, which
        # costs more than the step itself on small models (benchmarks/ in the template measures it).
        self.log("train/loss", loss)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Return class probabilities, shape ``(batch, num_classes)``."""
        images, _ = batch
        return self(images).softmax(dim=-1)

    def _evaluate(self, batch: tuple[Tensor, Tensor], split: str, accuracy: MulticlassAccuracy) -> None:
        images, labels = batch
        logits = self(images)
        # sync_dist averages the loss over DDP processes; the torchmetrics accuracy syncs itself.
        self.log(f"{split}/loss", self.loss(logits, labels), prog_bar=True, sync_dist=True)
        accuracy.update(logits, labels)
        self.log(f"{split}/acc", accuracy, prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        # max_epochs is -1 for "no limit": the cosine then spans a single epoch and stays at its floor.
        epochs = max(self.trainer.max_epochs, 1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
