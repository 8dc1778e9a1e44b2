"""The data: scikit-learn's bundled handwritten digits, split and batched for the Trainer.

1,797 grey-scale 8x8 images of the digits 0-9 ship inside scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

# Pixel values in scikit-learn's digits run from 0 to 16; the network sees them scaled to [0, 1].
PIXEL_MAX = 16.0


class ImageTensorDataset(Dataset):
    """Images and labels held in memory as two tensors.

    ``__getitems__`` lets the DataLoader fetch a whole batch with one indexing operation instead of
    one ``__getitem__`` call per sample followed by a collate step.
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        batch = torch.as_tensor(indices)
        return self.images[batch], self.labels[batch]


def keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Collate function for datasets whose ``__getitems__`` already returns a stacked batch."""
    return batch


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

    Args:
        batch_size: Samples per batch (per device under DDP).
        val_fraction: Share of all samples held out for validation.
        test_fraction: Share of all samples held out for the final test.
        split_seed: Seed of the shuffle that assigns samples to splits; independent of the training seed
            so that changing one never changes the other.
        num_workers: DataLoader worker processes. The digits live in memory, so 0 is fastest.
    """

    input_shape = (1, 8, 8)
    num_classes = 10
    class_names = tuple(str(digit) for digit in range(10))
    # How raw pixels become the network's input, (pixels / scale - mean) / std, for whoever feeds an
    # exported model (export.py writes it next to the model file).
    normalization = {"scale": PIXEL_MAX, "mean": 0.0, "std": 1.0}

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
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.splits: dict[str, ImageTensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """Load the digits and split them; every process computes the same split from ``split_seed``."""
        if self.splits:
            return
        images, labels = load_digit_tensors()
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.split_seed))
        num_val = round(len(labels) * self.val_fraction)
        num_test = round(len(labels) * self.test_fraction)
        bounds = {
            "test": order[:num_test],
            "val": order[num_test : num_test + num_val],
            "train": order[num_test + num_val :],
        }
        self.splits = {name: ImageTensorDataset(images[idx], labels[idx]) for name, idx in bounds.items()}

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
