"""The example data: MNIST handwritten digits, downloaded once into ``data/``, split and batched.

60,000 training and 10,000 test images of 28x28 grey pixels; ``mnist_files.py`` downloads and reads them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor

from .mnist_files import DEFAULT_DATA_DIR, SHA256, MissingDataError, fetch_mnist, read_idx, write_idx
from .tensors import InMemoryDataModule, in_memory_splits, split_indices

PIXEL_MAX = 255.0


class MNISTDataModule(InMemoryDataModule):
    """MNIST's training set split into train/val, reproducibly from ``split_seed``; its test set for test.

    ``model_args()`` tells the model what it is built for: the shape of one image, the class names and how
    raw pixels were normalised.

    Args:
        data_dir: Folder holding (or receiving) the four ``.gz`` files; default ``data/MNIST`` in the project.
        batch_size: Samples per batch (per device under DDP).
        val_fraction: Share of the 60,000 training images held out for validation.
        split_seed: Seed of the shuffle that assigns images to train/val; independent of the training seed.
        num_workers: DataLoader worker processes. The images live in memory, so 0 is fastest.
        checksums: Expected SHA-256 of each file; default: the published MNIST files. Set it only to
            train on another set in the same format (the tests use a small stand-in).
    """

    class_names = [str(digit) for digit in range(10)]

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        num_workers: int = 0,
        checksums: dict[str, str] | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if not 0 < val_fraction < 1:
            raise MisconfigurationException(f"data.val_fraction {val_fraction}: must be between 0 and 1")
        if checksums is not None and set(checksums) != set(SHA256):
            raise MisconfigurationException(
                f"data.checksums {sorted(checksums)}: must name the files {sorted(SHA256)}"
            )
        self.data_dir = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.checksums = checksums or SHA256

    def model_args(self) -> dict[str, object]:
        """What the model is built from: one image's shape, the class names and the pixel recipe.

        The recipe, network input = (pixels / scale - mean) / std per channel, is for a consumer of an export.
        """
        return {
            "input_shape": [1, 28, 28],
            "class_names": self.class_names,
            "normalization": {"scale": PIXEL_MAX, "mean": [0.0], "std": [1.0]},
        }

    @classmethod
    def stand_in(cls, folder: Path, train_size: int = 1200, test_size: int = 200) -> dict[str, object]:
        """Write a small, learnable stand-in for MNIST in its file format; return the init arguments for it.

        28x28 noise with a faint 6x6 square whose position encodes the label. Tests train on it, so they
        never download.
        """
        folder.mkdir(parents=True, exist_ok=True)
        checksums = {}
        names = iter(SHA256)  # train images, train labels, test images, test labels
        for seed, size in enumerate((train_size, test_size)):
            labels = torch.arange(size, dtype=torch.uint8) % len(cls.class_names)
            images_file, labels_file = next(names), next(names)
            checksums[images_file] = write_idx(folder / images_file, learnable_images(labels, seed))
            checksums[labels_file] = write_idx(folder / labels_file, labels)
        return {"data_dir": str(folder), "checksums": checksums}

    def prepare_data(self) -> None:
        """Download what is missing (Lightning calls this in one process per machine)."""
        try:
            fetch_mnist(self.data_dir, self.checksums)
        except MissingDataError as error:
            # Missing data is a setup problem, not a bug: one line that says what to do, no traceback.
            raise SystemExit(f"error: {error}") from None

    def setup(self, stage: str | None = None) -> None:
        """Read the files and split the training set; every process computes the same split."""
        if self.splits:
            return
        fetch_mnist(self.data_dir, self.checksums)  # checks the files that prepare_data fetched
        train_images, train_labels, test_images, test_labels = (read_idx(self.data_dir / n) for n in SHA256)
        indices = split_indices(len(train_labels), {"val": self.val_fraction, "train": None}, self.split_seed)
        self.splits = in_memory_splits(
            train_images.unsqueeze(1).float() / PIXEL_MAX, train_labels.long(), indices
        )
        test_rows = torch.arange(len(test_labels))
        self.splits.update(
            in_memory_splits(
                test_images.unsqueeze(1).float() / PIXEL_MAX, test_labels.long(), {"test": test_rows}
            )
        )


def learnable_images(labels: Tensor, seed: int) -> Tensor:
    """28x28 noise with a faint 6x6 square whose position encodes the label: learnable in a few epochs."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 200, (len(labels), 28, 28), generator=generator, dtype=torch.int32)
    for index, label in enumerate(labels.tolist()):
        row, col = 2 + 12 * (label // 5), 1 + 5 * (label % 5)
        images[index, row : row + 6, col : col + 6] += 50
    return images.clamp(0, 255).to(torch.uint8)
