"""Our data: token sequences, each with one of three marker tokens somewhere, to name."""

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..infra.faults.resumable_loader import ResumableDataLoader

MARKERS = {"red": 1, "green": 2, "blue": 3}  # the class names and their marker tokens


class MarkedSequences(pl.LightningDataModule):
    """Random tokens from 4 to ``vocab_size - 1``, with one marker token at a random place."""

    def __init__(
        self, count: int = 3000, length: int = 40, vocab_size: int = 50, batch_size: int = 64
    ) -> None:
        super().__init__()
        self.count, self.length, self.vocab_size, self.batch_size = count, length, vocab_size, batch_size

    @classmethod
    def stand_in(cls, folder: Path) -> dict:
        """Fewer, shorter sequences for the tests."""
        return {"count": 600, "length": 12}

    def model_args(self) -> dict:
        """The model needs the vocabulary size and the class names."""
        return {"vocab_size": self.vocab_size, "class_names": list(MARKERS)}

    def setup(self, stage: str | None = None) -> None:
        """Generate the sequences and split them 70/15/15."""
        generator = torch.Generator().manual_seed(0)
        tokens = torch.randint(4, self.vocab_size, (self.count, self.length), generator=generator)
        labels = torch.randint(0, len(MARKERS), (self.count,), generator=generator)
        places = torch.randint(0, self.length, (self.count,), generator=generator)
        tokens[torch.arange(self.count), places] = torch.tensor(list(MARKERS.values()))[labels]
        cut = [int(self.count * 0.7), int(self.count * 0.85)]
        self.train = TensorDataset(tokens[: cut[0]], labels[: cut[0]])
        self.val = TensorDataset(tokens[cut[0] : cut[1]], labels[cut[0] : cut[1]])
        self.test = TensorDataset(tokens[cut[1] :], labels[cut[1] :])

    def train_dataloader(self) -> DataLoader:
        return ResumableDataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test, batch_size=self.batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
