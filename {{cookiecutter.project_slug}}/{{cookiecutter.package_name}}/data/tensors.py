"""Samples held in memory as tensors, split reproducibly and batched with one indexing operation."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..infra.faults.resumable_loader import ResumableDataLoader


class InMemoryDataset(Dataset):
    """Inputs and targets held in memory as two tensors of the same length.

    ``__getitems__`` lets the DataLoader fetch a whole batch with one indexing operation instead of one
    ``__getitem__`` call per sample followed by a collate step. ``sample_ids`` names each sample where it
    came from (``predict`` writes it beside each prediction).
    """

    def __init__(self, inputs: Tensor, targets: Tensor, sample_ids: Sequence[str] | None = None) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs = inputs
        self.targets = targets
        if sample_ids is not None:
            self.sample_ids = list(sample_ids)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        batch = torch.as_tensor(indices)
        return self.inputs[batch], self.targets[batch]


def keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Collate function for datasets whose ``__getitems__`` already returns a stacked batch."""
    return batch


def split_fractions(val_fraction: float, test_fraction: float) -> dict[str, float | None]:
    """The split fractions for :func:`split_indices`: test, validation, and the rest for training."""
    if min(val_fraction, test_fraction) <= 0 or val_fraction + test_fraction >= 1:
        raise MisconfigurationException(
            f"data.val_fraction {val_fraction} + data.test_fraction {test_fraction}: each must be above 0 and"
            " their sum below 1"
        )
    return {"test": test_fraction, "val": val_fraction, "train": None}


def split_indices(num_samples: int, fractions: dict[str, float | None], seed: int) -> dict[str, Tensor]:
    """Shuffle ``range(num_samples)`` with ``seed`` and cut it into one index tensor per named fraction.

    The first names get ``round(num_samples * fraction)`` samples each; the last name gets the rest. The
    shuffle depends on ``seed`` alone, so every process (and every later run) computes the same split.
    """
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    *named, rest = fractions
    splits, start = {}, 0
    for name in named:
        size = round(num_samples * fractions[name])
        splits[name], start = order[start : start + size], start + size
    splits[rest] = order[start:]
    return splits


def in_memory_splits(
    inputs: Tensor, targets: Tensor, indices: dict[str, Tensor]
) -> dict[str, InMemoryDataset]:
    """One :class:`InMemoryDataset` per split of ``indices``; each sample's id is its row in ``inputs``."""
    return {
        name: InMemoryDataset(inputs[rows], targets[rows], [str(row) for row in rows.tolist()])
        for name, rows in indices.items()
    }


def loader(dataset: Dataset, batch_size: int, num_workers: int, train: bool = False) -> DataLoader:
    """A DataLoader for an :class:`InMemoryDataset` (batches come whole from ``__getitems__``).

    The training one shuffles, and a resumed run continues it at the batch where its checkpoint was saved.
    """
    return (ResumableDataLoader if train else DataLoader)(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        collate_fn=keep_batch,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


class InMemoryDataModule(pl.LightningDataModule):
    """Batches the :class:`InMemoryDataset` of each split that a subclass's ``setup`` puts into ``splits``.

    The splits are ``train``, ``val`` and ``test``. The training loader shuffles, and resumes mid-epoch;
    predict uses the test split.

    Args:
        batch_size: Samples per batch (per device under DDP).
        num_workers: DataLoader worker processes. The data lives in memory, so 0 is fastest.
    """

    def __init__(self, batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.splits: dict[str, InMemoryDataset] = {}

    def train_dataloader(self) -> DataLoader:
        return loader(self.splits["train"], self.batch_size, self.num_workers, train=True)

    def val_dataloader(self) -> DataLoader:
        return loader(self.splits["val"], self.batch_size, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return loader(self.splits["test"], self.batch_size, self.num_workers)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
