"""Our data: scikit-learn's diabetes measurements, split 70/15/15."""

import pytorch_lightning as pl
import torch
from sklearn.datasets import load_diabetes
from torch.utils.data import DataLoader, TensorDataset, random_split


class DiabetesData(pl.LightningDataModule):
    """Ten features and the disease progression a year later (targets scaled down by 100)."""

    def __init__(self, batch_size: int = 32) -> None:
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage: str | None = None) -> None:
        """Load and split the data."""
        features, targets = load_diabetes(return_X_y=True)
        dataset = TensorDataset(
            torch.tensor(features, dtype=torch.float32),
            torch.tensor(targets, dtype=torch.float32)[:, None] / 100,
        )
        self.train, self.val, self.test = random_split(
            dataset, [0.7, 0.15, 0.15], generator=torch.Generator().manual_seed(42)
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test, batch_size=self.batch_size)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.test, batch_size=self.batch_size)
