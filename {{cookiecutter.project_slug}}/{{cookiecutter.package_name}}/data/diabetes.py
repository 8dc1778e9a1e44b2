"""The example data: scikit-learn's bundled diabetes measurements, a tabular regression, split and batched.

442 patients, 10 numeric features (age, sex, body mass index, blood pressure and six blood serum
measurements, each centred and scaled by scikit-learn) and the target: a measure of the disease's progression
one year later (25 to 346). The data ships inside scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .tensors import InMemoryDataModule, in_memory_splits, split_fractions, split_indices


class DiabetesDataModule(InMemoryDataModule):
    """Splits the patients into train/val/test sets, reproducibly from ``split_seed``, and batches them.

    Batches are ``(features, targets)``: float32 ``(batch, 10)`` and float32 ``(batch,)``. ``model_args()``
    tells the model what it is built for.

    Args:
        batch_size: Samples per batch (per device under DDP).
        val_fraction: Share of all samples held out for validation.
        test_fraction: Share of all samples held out for the final test.
        split_seed: Seed of the shuffle that assigns samples to splits; independent of the training seed
            so that changing one never changes the other.
        num_workers: DataLoader worker processes. The data lives in memory, so 0 is fastest.
    """

    def __init__(
        self,
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.fractions = split_fractions(val_fraction, test_fraction)
        self.split_seed = split_seed
        self.feature_names: list[str] = []

    @classmethod
    def stand_in(cls, folder: Path) -> dict[str, object]:
        """Init arguments for stand-in data in ``folder``: none needed, the data is bundled and small."""
        return {}

    def model_args(self) -> dict[str, object]:
        """What the model is built from: the feature names, and the training targets' mean and spread."""
        self.setup()
        targets = self.splits["train"].targets
        return {
            "feature_names": self.feature_names,
            "target_mean": targets.mean().item(),
            "target_std": targets.std().item(),
        }

    def setup(self, stage: str | None = None) -> None:
        """Load the data and split it; every process computes the same split from ``split_seed``."""
        if self.splits:
            return
        # Imported here: scikit-learn takes ~0.5 s to import, and `train.py --help` needs none of it.
        from sklearn.datasets import load_diabetes

        data = load_diabetes()
        self.feature_names = list(data.feature_names)
        features = torch.tensor(data.data, dtype=torch.float32)
        targets = torch.tensor(data.target, dtype=torch.float32)
        indices = split_indices(len(targets), self.fractions, self.split_seed)
        self.splits = in_memory_splits(features, targets, indices)
