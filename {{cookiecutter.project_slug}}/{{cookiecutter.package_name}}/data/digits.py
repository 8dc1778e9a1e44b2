"""The example data: scikit-learn's bundled handwritten digits, split and batched for the Trainer.

1,797 grey-scale 8x8 images of the digits 0-9 ship inside scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .tensors import InMemoryDataModule, in_memory_splits, split_fractions, split_indices

# Pixel values in scikit-learn's digits run from 0 to 16; the network sees them scaled to [0, 1].
PIXEL_MAX = 16.0


class DigitsDataModule(InMemoryDataModule):
    """Splits the digits into train/val/test sets, reproducibly from ``split_seed``, and batches them.

    Batches are ``(images, labels)``: float32 ``(batch, 1, 8, 8)`` in [0, 1] and int64 ``(batch,)``.
    ``model_args()`` tells the model what it is built for.

    Args:
        batch_size: Samples per batch (per device under DDP).
        val_fraction: Share of all samples held out for validation.
        test_fraction: Share of all samples held out for the final test.
        split_seed: Seed of the shuffle that assigns samples to splits; independent of the training seed
            so that changing one never changes the other.
        num_workers: DataLoader worker processes. The digits live in memory, so 0 is fastest.
    """

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.fractions = split_fractions(val_fraction, test_fraction)
        self.split_seed = split_seed

    @classmethod
    def stand_in(cls, folder: Path) -> dict[str, object]:
        """Init arguments for stand-in data in ``folder``: none needed, the digits are bundled and small."""
        return {}

    def model_args(self) -> dict[str, object]:
        """What the model is built from: one image's shape, the class names and the pixel recipe.

        The recipe, network input = (pixels / scale - mean) / std per channel, is for a consumer of an export.
        """
        return {
            "input_shape": [1, 8, 8],
            "class_names": [str(digit) for digit in range(10)],
            "normalization": {"scale": PIXEL_MAX, "mean": [0.0], "std": [1.0]},
        }

    def setup(self, stage: str | None = None) -> None:
        """Load the digits and split them; every process computes the same split from ``split_seed``."""
        if self.splits:
            return
        # Imported here: scikit-learn takes ~0.5 s to import, and `train.py --help` needs none of it.
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / PIXEL_MAX
        labels = torch.tensor(digits.target, dtype=torch.long)
        indices = split_indices(len(labels), self.fractions, self.split_seed)
        self.splits = in_memory_splits(images, labels, indices)
