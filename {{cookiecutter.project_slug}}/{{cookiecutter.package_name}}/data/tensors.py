"""Images and labels held in memory as two tensors, batched with one indexing operation."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..infra.faults.resumable_loader import ResumableDataLoader


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


def split_indices(num_samples: int, fractions: dict[str, float], seed: int) -> dict[str, Tensor]:
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


def loader(dataset: Dataset, batch_size: int, num_workers: int, train: bool = False) -> DataLoader:
    """A DataLoader for an :class:`ImageTensorDataset` (batches come whole from ``__getitems__``).

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
