"""What the image DataModules share: uint8 batches normalised on the device, and what the model is built from.

``FolderDataModule`` (``folder.py``) reads class folders; ``ShardsDataModule`` (``shards.py``) streams the
same images from LitData shards.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader

PIXEL_MAX = 255.0


def default_workers(processes: int) -> int:
    """DataLoader workers for each of ``processes`` on this machine: its share of the cores, 1 to 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores // processes))


class ImageBatches(pl.LightningDataModule):
    """Batches of ``(images, labels)`` whose images stay uint8 until they reach the device.

    ``on_after_batch_transfer`` normalises them there (uint8 crosses to a GPU 4 times lighter than float32),
    so the network, the exports and the machinery see float inputs. ``model_args()`` tells the model what
    it is built for: the shape of one image, the class names and that recipe. A subclass makes each split's
    DataLoader in ``loader(split)``, which the dataloader hooks call.

    Args:
        input_shape: ``(channels, height, width)`` of one image.
        class_names: Name of each class, in the order of the labels.
        batch_size: Samples per batch (per device under DDP).
        num_workers: DataLoader worker processes, which read the images; None: this process's share of the
            cores, at most 8.
    """

    def __init__(
        self, input_shape: Sequence[int], class_names: Sequence[str], batch_size: int, num_workers: int | None
    ) -> None:
        super().__init__()
        self.input_shape, self.class_names = tuple(input_shape), tuple(class_names)
        self.batch_size, self.num_workers = batch_size, num_workers
        channels = self.input_shape[0]
        # Fixed, not measured: no statistics pass over the user's data, and 0.5 maps [0, 1] to [-1, 1].
        self.normalization = {"scale": PIXEL_MAX, "mean": [0.5] * channels, "std": [0.5] * channels}
        self.recipe: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def model_args(self) -> dict[str, object]:
        """What the model is built from: one image's shape, the class names and the pixel recipe.

        The recipe, network input = (pixels / scale - mean) / std per channel, is for a consumer of an export.
        """
        return {
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
            "normalization": self.normalization,
        }

    def loader(self, split: str) -> DataLoader:
        """The DataLoader of ``split``: "train", "val" or "test"."""
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

    def workers(self) -> int:
        """DataLoader workers: ``num_workers``, or this process's share of the machine's cores."""
        if self.num_workers is not None:
            return self.num_workers
        return default_workers(self.trainer.num_devices if self.trainer else 1)

    def on_after_batch_transfer(
        self, batch: tuple[Tensor, Tensor], dataloader_idx: int
    ) -> tuple[Tensor, Tensor]:
        """Pixels to the network's inputs, on the device: ``(pixels / scale - mean) / std``."""
        images, labels = batch
        if images.device not in self.recipe:  # made once per device: each copy to a GPU waits for it
            mean, std = (torch.tensor(self.normalization[key]).view(-1, 1, 1) for key in ("mean", "std"))
            scale = 1 / (self.normalization["scale"] * std)
            self.recipe[images.device] = (scale.to(images.device), (mean / std).to(images.device))
        scale, shift = self.recipe[images.device]
        return images.float().mul_(scale).sub_(shift), labels


def write_sample_images(folder: Path) -> None:
    """A small, learnable set of images in class folders, for the tests and to try the project on.

    Three classes of RGB noise, each with one channel a little brighter (a tint that random crops and flips
    keep), faint enough to take a few epochs to learn; at 20x24, so that resizing is exercised.
    """
    generator = torch.Generator().manual_seed(0)
    height, width = 20, 24
    for channel, name in enumerate(["reddish", "greenish", "bluish"]):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(40):
            pixels = torch.randint(0, 232, (height, width, 3), dtype=torch.uint8, generator=generator)
            pixels[..., channel] += 24  # 231 + 24: no overflow
            image = Image.frombytes("RGB", (width, height), bytes(pixels.flatten().tolist()))
            image.save(folder / name / f"{i:03d}.png")
