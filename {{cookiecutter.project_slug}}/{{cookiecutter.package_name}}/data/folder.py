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
import torch
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader

from ..infra.faults.resumable_loader import ResumableDataLoader
from .image_cache import cache_name, cached
from .images import EpochShuffle, ImageFiles, Transform, transforms
from .pixels import ImageBatches, write_sample_images
from .tensors import keep_batch, split_fractions, split_indices

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


def images_in(folder: Path) -> list[str]:
    """The image files in ``folder`` and its sub-folders, as paths relative to it, sorted.

    Hidden files and folders (editor and OS litter) are skipped, and links to folders are not followed.
    """
    found = []
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        relative = os.path.relpath(parent, folder)
        found += [
            os.path.normpath(os.path.join(relative, name))
            for name in names
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in EXTENSIONS
        ]
    return sorted(found)


class FolderDataModule(ImageBatches):
    """Images from class folders, split into train/val/test reproducibly from ``split_seed``.

    The class names are the folder names. Nothing is held in memory but the file names: DataLoader workers
    read each batch's images, from the files or from the cache of resized images, so memory does not grow
    with the number of images, and under DDP each process reads its own share.

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
        if channels not in (1, 3):
            raise MisconfigurationException(f"data.channels {channels}: must be 1 (greyscale) or 3 (RGB)")
        if len(image_size) != 2 or min(image_size) < 1:
            raise MisconfigurationException(f"data.image_size {list(image_size)}: need [height, width] > 0")
        fractions = split_fractions(val_fraction, test_fraction)
        if crop_scale is not None and not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise MisconfigurationException(
                f"data.crop_scale {list(crop_scale)}: need [low, high] with 0 < low <= high <= 1, or null"
            )
        self.root = Path(root)
        super().__init__((channels, *image_size), class_folders(self.root), batch_size, num_workers)
        self.image_size = tuple(image_size)
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.fractions = fractions
        self.crop_scale, self.flip, self.cache = crop_scale, flip, cache
        self.splits: dict[str, ImageFiles] = {}

    def image_files(self) -> tuple[np.ndarray, Tensor]:
        """Every image's path relative to ``root``, and its class index.

        Sorted, so that no split depends on the file system's order. The paths are one numpy array of
        bytes rather than a Python object each, so that forked workers share its memory, never copying it.
        """
        files, labels = [], []
        for label, name in enumerate(self.class_names):
            found = images_in(self.root / name)
            if not found:
                raise MisconfigurationException(
                    f"data.root {str(self.root)!r}: class folder {name!r} has no images"
                    f" ({', '.join(EXTENSIONS)})"
                )
            files += [os.fsencode(os.path.join(name, path)) for path in found]
            labels += [label] * len(found)
        return np.array(files), torch.tensor(labels)

    def setup(self, stage: str | None = None) -> None:
        """List and split the images, and find or build their cache; no image is held in memory.

        Every process computes the same split, from ``split_seed``.
        """
        if self.splits:
            return
        files, labels = self.image_files()
        indices = split_indices(len(files), self.fractions, self.split_seed)
        if min(len(split) for split in indices.values()) < 1:
            raise MisconfigurationException(
                f"data.val_fraction {self.val_fraction} + data.test_fraction {self.test_fraction}: a split "
                f"of the {len(files)} images in data.root {str(self.root)!r} would be empty"
            )
        resize = transforms(self.image_size, None, False)
        cache = self.cached(files, labels, resize) if self.cache is not None else None
        self.splits = {
            name: ImageFiles(self.root, files, labels, rows, self.input_shape, resize, cache)
            for name, rows in indices.items()
        }
        if self.crop_scale is not None or self.flip:  # the other splits only resize
            self.splits["train"].transform = transforms(self.image_size, self.crop_scale, self.flip)
            self.splits["train"].random = True

    def cached(self, files: np.ndarray, labels: Tensor, resize: Transform) -> Path | None:
        """The cache of every image resized, built by this process's workers if no process has built it."""
        everything = ImageFiles(self.root, files, labels, torch.arange(len(files)), self.input_shape, resize)
        loader = DataLoader(everything, batch_size=64, num_workers=self.workers(), collate_fn=keep_batch)
        name = cache_name(self.root, files, self.input_shape)
        return cached(self.root / self.cache, name, (len(files), *self.input_shape), (i for i, _ in loader))

    def loader(self, split: str) -> DataLoader:
        train, workers = split == "train", self.workers()
        dataset = self.splits[split]
        sampler = None
        if train:
            # Lightning's seed (seed_everything), as its DistributedSampler uses: the same in every process.
            sampler = EpochShuffle(dataset, seed=int(os.environ.get("PL_GLOBAL_SEED", 0)))
            # Workers draw their first batches as soon as the loader is iterated, which a resumed run does
            # before Lightning sets the sampler's epoch: set here (to the number Lightning would set), the
            # epoch it resumes in is drawn, not the first.
            sampler.set_epoch(self.trainer.fit_loop.epoch_progress.current.processed if self.trainer else 0)
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

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    @classmethod
    def stand_in(cls, folder: Path) -> dict[str, object]:
        """Write the sample images into ``folder``; return the args that read them (for the tests)."""
        write_sample_images(folder)
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
    write_sample_images(target)
    print(f"Wrote {sum(1 for _ in target.rglob('*.png'))} sample images in 3 class folders into {target}/")


if __name__ == "__main__":
    main(sys.argv[1:])
