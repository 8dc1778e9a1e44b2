"""The example data: scikit-learn's bundled handwritten digits, split and batched for the Trainer.

1,797 grey-scale 8x8 images of the digits 0-9 ship inside scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from .tensors import ImageTensorDataset, loader, split_indices

# Pixel values in scikit-learn's digits run from 0 to 16; the network sees them scaled to [0, 1].
PIXEL_MAX = 16.0


def load_digit_tensors() -> tuple[Tensor, Tensor]:
    """Return all digits as images ``(1797, 1, 8, 8)`` in [0, 1] and integer labels ``(1797,)``."""
    # Imported here: scikit-learn takes ~0.5 s to import, and `train.py --help` needs none of it.
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / PIXEL_MAX
    labels = torch.tensor(digits.target, dtype=torch.long)
    return images, labels


class DigitsDataModule(pl.LightningDataModule):
    """Splits the digits into train/val/test sets, reproducibly from ``split_seed``, and batches them.

    The attributes ``input_shape``, ``class_names`` and ``normalization`` are the contract with the model:
    the command line hands them to the LightningModule, which stores them in every checkpoint.

    Args:
        batch_size: Samples per batch (per device under DDP).
        val_fraction: Share of all samples held out for validation.
        test_fraction: Share of all samples held out for the final test.
        split_seed: Seed of the shuffle that assigns samples to splits; independent of the training seed
            so that changing one never changes the other.
        num_workers: DataLoader worker processes. The digits live in memory, so 0 is fastest.
    """

    input_shape = (1, 8, 8)
    class_names = tuple(str(digit) for digit in range(10))
    # How raw pixels become the network's input, (pixels / scale - mean) / std per channel.
    normalization = {"scale": PIXEL_MAX, "mean": [0.0], "std": [1.0]}

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if not 0 < val_fraction + test_fraction < 1:
            raise ValueError(
                f"val_fraction + test_fraction must be between 0 and 1, got {val_fraction} + {test_fraction}"
            )
        self.batch_size = batch_size
        self.fractions = {"test": test_fraction, "val": val_fraction, "train": None}
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.splits: dict[str, ImageTensorDataset] = {}

    @classmethod
    def stand_in(cls, folder: Path) -> dict[str, object]:
        """Init arguments for stand-in data in ``folder``: none needed, the digits are bundled and small."""
        return {}

    def setup(self, stage: str | None = None) -> None:
        """Load the digits and split them; every process computes the same split from ``split_seed``."""
        if self.splits:
            return
        images, labels = load_digit_tensors()
        indices = split_indices(len(labels), self.fractions, self.split_seed)
        self.splits = {name: ImageTensorDataset(images[i], labels[i]) for name, i in indices.items()}

    def train_dataloader(self) -> DataLoader:
        return loader(self.splits["train"], self.batch_size, self.num_workers, train=True)

    def val_dataloader(self) -> DataLoader:
        return loader(self.splits["val"], self.batch_size, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return loader(self.splits["test"], self.batch_size, self.num_workers)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
