{%- set tokens = cookiecutter.example == "tokens" -%}
"""The training logic: loss, metrics, optimizer and schedule around the network in ``models``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

{% if tokens -%}
from ..models.gru import GRUEncoder
{%- elif cookiecutter.example == "digits" -%}
from ..models.mlp import MLP
{%- else -%}
from ..models.cnn import CNN
{%- endif %}


class {{ "SequenceClassifier" if tokens else "ImageClassifier" }}(pl.LightningModule):
    """Trains the network with cross-entropy, and reports loss and accuracy for each split.

    ``{{ "vocab_size" if tokens else "input_shape" }}`` and ``class_names`` come from the data (its DataModule's
    ``model_args()``): the command line fills them in, and every checkpoint keeps them.

    Args:
{%- if tokens %}
        vocab_size: Number of distinct tokens; tokens are integers from 0 to ``vocab_size - 1``.
        class_names: Name of each class, in the order of the labels.
        embedding_dim: Width of each token's embedding.
        hidden_size: Width of the GRU's state.
{%- else %}
        input_shape: Shape of one image, ``(channels, height, width)``.
        class_names: Name of each class, in the order of the labels.
        hidden_dims: Widths of the hidden layers of the network.
{%- endif %}
        dropout: Dropout probability of the network.
        lr: Peak learning rate of AdamW; a cosine schedule decays it to zero over ``max_epochs``.
        weight_decay: AdamW weight decay.
    """

    def __init__(
        self,
{%- if tokens %}
        vocab_size: int,
        class_names: Sequence[str],
        embedding_dim: int = 32,
        hidden_size: int = 64,
{%- else %}
        input_shape: Sequence[int],
        class_names: Sequence[str],
        hidden_dims: Sequence[int] = (64,),
{%- endif %}
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        super().__init__()
        # Plain numbers and strings only, so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters()
        num_classes = len(class_names)
{%- if tokens %}
        self.net = GRUEncoder(vocab_size, num_classes, embedding_dim, hidden_size, dropout)
{%- elif cookiecutter.example == "digits" %}
        self.net = MLP(input_shape, num_classes, hidden_dims, dropout)
{%- else %}
        self.net = CNN(input_shape, num_classes, hidden_dims, dropout)
{%- endif %}
        # average="micro": the share of correctly classified samples (torchmetrics defaults to macro).
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

{%- if tokens %}

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits, one per class of ``class_names``, for int64 tokens ``(batch, length)``.

        Softmax gives the probabilities.
        """
        return self.net(tokens)
{%- else %}

    def forward(self, images: Tensor) -> Tensor:
        """Logits, one per class of ``class_names``, for float32 images ``(batch, *input_shape)``.

        The images are normalised as ``normalization`` (from the data) says; softmax gives the probabilities.
        """
        return self.net(images)
{%- endif %}

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The training objective, also reported as ``<split>/loss`` on validation and test."""
        return F.cross_entropy(logits, labels)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, labels = batch
        logits = self(inputs)
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

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Any]:
        """A row per sample (``python train.py predict``): the most likely class, each class's probability."""
        inputs, _ = batch
        probabilities = self(inputs).softmax(dim=-1)
        names = self.hparams.class_names
        most_likely = [names[index] for index in probabilities.argmax(dim=-1).tolist()]
        each = {f"prob_{name}": probabilities[:, k] for k, name in enumerate(names)}
        return {"prediction": most_likely, **each}

    def _evaluate(self, batch: tuple[Tensor, Tensor], split: str, accuracy: MulticlassAccuracy) -> None:
        inputs, labels = batch
        logits = self(inputs)
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
