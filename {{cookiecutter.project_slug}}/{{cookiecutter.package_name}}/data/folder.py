"""The example data: your own images, one sub-folder per class, streamed, augmented, split and batched.

The layout is torchvision's ImageFolder, ``<data.root>/<class name>/<image file>`` (nested folders count
for the class folder they are in); the sorted folder names are the class names. Files of other types and
hidden ones (``.DS_Store``, ``.ipynb_checkpoints``, the cache) are ignored.

Run as a module (``python -m``) with a folder, it writes a small sample set there to try the project on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader

from ..infra.faults.resumable_loader import ResumableDataLoader
from .image_cache import cache_name, cached
from .images import EpochShuffle, ImageFiles, Transform, transforms
from .tensors import keep_batch, split_indices

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
PIXEL_MAX = 255.0


def is_image(path: Path, folder: Path) -> bool:
    """Whether ``path`` in ``folder`` is data: hidden files and folders are editor and OS litter."""
    hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
    return path.suffix.lower() in EXTENSIONS and not hidden and path.is_file()


def default_workers(processes: int) -> int:
    """DataLoader workers for each of ``processes`` on this machine: its share of the cores, 1 to 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores // processes))


class FolderDataModule(pl.LightningDataModule):
    """Images from class folders, split into train/val/test reproducibly from ``split_seed``.

    ``model_args()`` tells the model what it is built for: the shape of one image, the class names (the
    folder names) and how raw pixels are normalised. Batches are ``(images, labels)``, the images uint8
    until they reach the device, where ``on_after_batch_transfer`` normalises them.

    Args:
        root: The folder of class folders; a relative path is relative to the working directory.
        image_size: ``(height, width)`` every image is resized to, whatever its own size.
        channels: 3 to read images as RGB, 1 as greyscale.
        batch_size: Samples per batch (per device under DDP).
        val_fraction: Share of all images held out for validation.
        test_fraction: Share of all images held out for the final test (and for predict).
        split_seed: Seed of the shuffle that assigns images to splits; independent of the training seed
            so that changing one never changes the other.
        num_workers: DataLoader worker processes, which read the images; None: this process's share of
            the cores, at most 8.
        crop_scale: Training only: each image is a random crop of this share of its area (and of aspect
            ratio 3:4 to 4:3), resized to ``image_size``; None: the whole image.
        flip: Training only: mirror each image left to right half the time.
        cache: A folder (relative to ``root``) where the resized images are written once, for every later
            run to read instead of decoding the files; None: decode them every epoch.
    """

    def __init__(
        self,
        root: str = "data/images",
        image_size: tuple[int, int] = (32, 32),
        channels: int = 3,
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        num_workers: int | None = None,
        crop_scale: tuple[float, float] | None = (0.35, 1.0),
        flip: bool = True,
        cache: str | None = ".cache",
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise MisconfigurationException(f"data.channels {channels}: must be 1 (greyscale) or 3 (RGB)")
        if len(image_size) != 2 or min(image_size) < 1:
            raise MisconfigurationException(f"data.image_size {list(image_size)}: need [height, width] > 0")
        if min(val_fraction, test_fraction) <= 0 or val_fraction + test_fraction >= 1:
            raise MisconfigurationException(
                f"data.val_fraction {val_fraction} + data.test_fraction {test_fraction}: "
                "each must be above 0 and their sum below 1"
            )
        if crop_scale is not None and not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise MisconfigurationException(
                f"data.crop_scale {list(crop_scale)}: need [low, high] with 0 < low <= high <= 1, or null"
            )
        self.root = Path(root)
        self.class_names = class_folders(self.root)
        self.image_size = tuple(image_size)
        self.channels, self.batch_size, self.split_seed = channels, batch_size, split_seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.num_workers, self.crop_scale, self.flip, self.cache = num_workers, crop_scale, flip, cache
        self.input_shape = (channels, *self.image_size)
        # Fixed, not measured: no statistics pass over the user's data, and 0.5 maps [0, 1] to [-1, 1].
        self.normalization = {"scale": PIXEL_MAX, "mean": [0.5] * channels, "std": [0.5] * channels}
        self.splits: dict[str, ImageFiles] = {}
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

    def image_files(self) -> tuple[np.ndarray, Tensor]:
        """Every image's path relative to ``root``, and its class index.

        Sorted, so that no split depends on the file system's order.
        """
        files, labels = [], []
        for label, name in enumerate(self.class_names):
            folder = self.root / name
            found = sorted(p for p in folder.rglob("*") if is_image(p, folder))
            if not found:
                raise MisconfigurationException(
                    f"data.root {str(self.root)!r}: class folder {name!r} has no images"
                    f" ({', '.join(EXTENSIONS)})"
                )
            files += [os.fsencode(path.relative_to(self.root)) for path in found]
            labels += [label] * len(found)
        return np.array(files), torch.tensor(labels)

    def setup(self, stage: str | None = None) -> None:
        """List and split the images, and find or build their cache; no image is held in memory.

        Every process computes the same split, from ``split_seed``.
        """
        if self.splits:
            return
        files, labels = self.image_files()
        fractions = {"test": self.test_fraction, "val": self.val_fraction, "train": None}
        indices = split_indices(len(files), fractions, self.split_seed)
        if min(len(split) for split in indices.values()) < 1:
            raise MisconfigurationException(
                f"data.val_fraction {self.val_fraction} + data.test_fraction {self.test_fraction}: a split "
                f"of the {len(files)} images in data.root {str(self.root)!r} would be empty"
            )
        resize = transforms(self.image_size, None, False)
        cache = self.cached(files, labels, resize) if self.cache is not None else None
        augment = transforms(self.image_size, self.crop_scale, self.flip)
        self.splits = {
            name: ImageFiles(self.root, files, labels, rows, self.input_shape, resize, cache)
            for name, rows in indices.items()
        }
        self.splits["train"].transform = augment

    def cached(self, files: np.ndarray, labels: Tensor, resize: Transform) -> Path | None:
        """The cache of every image resized, built by this process's workers if no process has built it."""
        everything = ImageFiles(self.root, files, labels, torch.arange(len(files)), self.input_shape, resize)
        loader = DataLoader(everything, batch_size=64, num_workers=self.workers(), collate_fn=keep_batch)
        name = cache_name(self.root, files, self.input_shape)
        return cached(self.root / self.cache, name, (len(files), *self.input_shape), (i for i, _ in loader))

    def workers(self) -> int:
        if self.num_workers is not None:
            return self.num_workers
        return default_workers(self.trainer.num_devices if self.trainer else 1)

    def loader(self, split: str) -> DataLoader:
        train, workers = split == "train", self.workers()
        dataset = self.splits[split]
        # Lightning's seed (seed_everything), as its own DistributedSampler uses: the same in every process.
        sampler = EpochShuffle(dataset, seed=int(os.environ.get("PL_GLOBAL_SEED", 0))) if train else None
        return (ResumableDataLoader if train else DataLoader)(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=keep_batch,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            # Starting workers draws their seed from this generator rather than torch's global one, whose
            # draws (dropout) a resumed run must repeat exactly, with persistent workers started anew.
            generator=torch.Generator().manual_seed(0),
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def on_after_batch_transfer(
        self, batch: tuple[Tensor, Tensor], dataloader_idx: int
    ) -> tuple[Tensor, Tensor]:
        """Pixels to the network's inputs, on the device: uint8 batches cross to it 4 times lighter."""
        images, labels = batch
        if images.device not in self.recipe:  # built once per device: a copy to a GPU waits for it
            mean, std = (torch.tensor(self.normalization[key]).view(-1, 1, 1) for key in ("mean", "std"))
            scale = 1 / (self.normalization["scale"] * std)
            self.recipe[images.device] = (scale.to(images.device), (mean / std).to(images.device))
        scale, shift = self.recipe[images.device]
        return images.float().mul_(scale).sub_(shift), labels  # (pixels / scale - mean) / std

    @classmethod
    def stand_in(cls, folder: Path) -> dict[str, object]:
        """Write a small, learnable data set in the real format into ``folder``; return the args to read it.

        Tests train on it instead of the user's images: three classes of RGB noise, each with one channel a
        little brighter (a tint that random crops and flips keep), faint enough to take a few epochs to
        learn; at 20x24, so that resizing to ``image_size`` is exercised.
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
        return {"root": str(folder)}


def class_folders(root: Path) -> tuple[str, ...]:
    """The class names: the sorted sub-folders of ``root``, or an error saying what is wrong with them."""
    if not root.is_dir():
        raise MisconfigurationException(
            f"data.root {str(root)!r}: no such folder; put one sub-folder of images per class there, or set "
            f"data.root (python -m {__name__} {root} writes a small sample set)"
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise MisconfigurationException(
            f"data.root {str(root)!r}: {len(classes)} class folders; put one sub-folder of images per class "
            "there, at least 2"
        )
    # A class folder may be a link (to images on another disk, say), but not to one that holds data.root
    # or another class's images: each image would then be in several classes.
    places = {name: (root / name).resolve() for name in classes}
    held = [("data.root itself", root.resolve())]
    held += [(f"class folder {name!r}", place) for name, place in places.items()]
    for name, place in places.items():
        for what, elsewhere in held:
            if what != f"class folder {name!r}" and elsewhere.is_relative_to(place):
                raise MisconfigurationException(
                    f"data.root {str(root)!r}: class folder {name!r} leads to {str(place)!r}, which holds "
                    f"{what}: its images would be in two classes; remove the link"
                )
    return tuple(classes)


def main(argv: list[str]) -> None:
    """Write the sample set into the folder ``argv`` names (``data/images`` without one), if it is empty."""
    target = Path(argv[0] if argv else "data/images")
    if target.is_dir() and any(target.iterdir()):
        sys.exit(f"error: {target} is not empty: the sample images go into a new or empty folder")
    FolderDataModule.stand_in(target)
    print(f"Wrote {sum(1 for _ in target.rglob('*.png'))} sample images in 3 class folders into {target}/")


if __name__ == "__main__":
    main(sys.argv[1:])
