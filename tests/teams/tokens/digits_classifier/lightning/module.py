"""Our training logic: cross-entropy over the marker classes."""

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ..models.pooling import MaxPoolClassifier


class MarkerClassifier(pl.LightningModule):
    """Names the marker in each sequence; the data gives the vocabulary size and the class names."""

    def __init__(self, vocab_size: int, class_names: list[str], width: int = 32, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = MaxPoolClassifier(vocab_size, len(class_names), width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits, one per class name."""
        return self.net(tokens)

    def training_step(self, batch, batch_idx):
        tokens, labels = batch
        loss = F.cross_entropy(self(tokens), labels)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        tokens, labels = batch
        logits = self(tokens)
        self.log("val/loss", F.cross_entropy(logits, labels))
        self.log("val/accuracy", (logits.argmax(1) == labels).float().mean())

    def test_step(self, batch, batch_idx):
        tokens, labels = batch
        self.log("test/accuracy", (self(tokens).argmax(1) == labels).float().mean())

    def predict_step(self, batch, batch_idx):
        tokens, _ = batch
        return {"marker": [self.hparams.class_names[k] for k in self(tokens).argmax(1).tolist()]}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
