"""The example data: your own images, one sub-folder per class, resized, split and batched for the Trainer.

The layout is torchvision's ImageFolder, ``<data.root>/<class name>/<image file>`` (nested folders count
for the class folder they are in); the sorted folder names are the class names. Files of other types and
hidden ones (``.DS_Store``, ``.ipynb_checkpoints``) are ignored.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image, UnidentifiedImageError
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .tensors import InMemoryDataset, loader, split_indices

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
MODES = {1: "L", 3: "RGB"}  # Pillow's name for each number of channels
PIXEL_MAX = 255.0


def is_image(path: Path, folder: Path) -> bool:
    """Whether ``path`` in ``folder`` is data: hidden files and folders are editor and OS litter."""
    hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
    return path.suffix.lower() in EXTENSIONS and not hidden and path.is_file()


def read_image(path: Path, mode: str, height: int, width: int) -> Tensor:
    """One image as a ``(channels, height, width)`` uint8 tensor, or an error that names the file."""
    try:
        with Image.open(path) as image:
            pixels = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR).tobytes()
    except UnidentifiedImageError as error:  # its message repeats the path and says nothing more
        raise MisconfigurationException(f"{path}: not an image, or too damaged to tell") from error
    # Pillow reports a damaged file as any of these, depending on the format and where the damage is.
    except (OSError, SyntaxError, ValueError) as error:
        raise MisconfigurationException(f"{path}: cannot be read as an image ({error})") from error
    return torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(height, width, -1).permute(2, 0, 1)


class FolderDataModule(pl.LightningDataModule):
    """Images from class folders, split into train/val/test reproducibly from ``split_seed``.

    ``model_args()`` tells the model what it is built for: the shape of one image, the class names (the
    folder names) and how raw pixels were normalised.

    ``setup`` decodes every image once and keeps them in memory, N x C x H x W float32 (10,000 RGB images
    of 64x64 take 0.5 GB, in every DDP process), so that a batch is one indexing operation. Data sets that
    do not fit need a Dataset that reads the files in ``__getitem__``, and ``num_workers > 0``.

    Args:
        root: The folder of class folders; a relative path is relative to the working directory.
        image_size: ``(height, width)`` every image is resized to, whatever its own size.
        channels: 3 to read images as RGB, 1 as greyscale.
        batch_size: Samples per batch (per device under DDP).
        val_fraction: Share of all images held out for validation.
        test_fraction: Share of all images held out for the final test (and for predict).
        split_seed: Seed of the shuffle that assigns images to splits; independent of the training seed
            so that changing one never changes the other.
        num_workers: DataLoader worker processes. The images live in memory, so 0 is usually fastest.
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
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if channels not in MODES:
            raise MisconfigurationException(f"data.channels {channels}: must be 1 (greyscale) or 3 (RGB)")
        if len(image_size) != 2 or min(image_size) < 1:
            raise MisconfigurationException(f"data.image_size {list(image_size)}: need [height, width] > 0")
        if min(val_fraction, test_fraction) <= 0 or val_fraction + test_fraction >= 1:
            raise MisconfigurationException(
                f"data.val_fraction {val_fraction} + data.test_fraction {test_fraction}: "
                "each must be above 0 and their sum below 1"
            )
        self.root = Path(root)
        if not self.root.is_dir():
            raise MisconfigurationException(
                f"data.root '{root}': no such folder; put one sub-folder of images per class there, "
                "or set data.root"
            )
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(classes) < 2:
            raise MisconfigurationException(
                f"data.root '{root}': {len(classes)} class folders; put one sub-folder of images per class "
                "there, at least 2"
            )
        self.image_size = tuple(image_size)
        self.channels = channels
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.input_shape = (channels, *self.image_size)
        self.class_names = tuple(classes)
        # Fixed, not measured: no statistics pass over the user's data, and 0.5 maps [0, 1] to [-1, 1].
        self.normalization = {"scale": PIXEL_MAX, "mean": [0.5] * channels, "std": [0.5] * channels}
        self.splits: dict[str, Dataset] = {}

    def model_args(self) -> dict[str, object]:
        """What the model is built from: one image's shape, the class names and the pixel recipe.

        The recipe, network input = (pixels / scale - mean) / std per channel, is for a consumer of an export.
        """
        return {
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
            "normalization": self.normalization,
        }

    def image_files(self) -> list[tuple[Path, int]]:
        """Every image with its class index, sorted so that no split depends on the file system's order."""
        files = []
        for label, name in enumerate(self.class_names):
            folder = self.root / name
            found = sorted(p for p in folder.rglob("*") if is_image(p, folder))
            if not found:
                raise MisconfigurationException(
                    f"data.root '{self.root}': class folder '{name}' has no images ({', '.join(EXTENSIONS)})"
                )
            files += [(path, label) for path in found]
        return files

    def setup(self, stage: str | None = None) -> None:
        """Read and split every image; every process computes the same split from ``split_seed``."""
        if self.splits:
            return
        files = self.image_files()
        fractions = {"test": self.test_fraction, "val": self.val_fraction, "train": None}
        indices = split_indices(len(files), fractions, self.split_seed)
        if min(len(split) for split in indices.values()) < 1:
            raise MisconfigurationException(
                f"data.val_fraction {self.val_fraction} + data.test_fraction {self.test_fraction}: a split "
                f"of the {len(files)} images in data.root '{self.root}' would be empty"
            )
        images = torch.empty(len(files), *self.input_shape, dtype=torch.uint8)
        for i, (path, _) in enumerate(files):
            images[i] = read_image(path, MODES[self.channels], *self.image_size)
        labels = torch.tensor([label for _, label in files])
        mean, std = (torch.tensor(self.normalization[key]).view(-1, 1, 1) for key in ("mean", "std"))
        # Converted one split at a time, so that there is never a second float32 copy of all images.
        names = [str(path.relative_to(self.root)) for path, _ in files]
        self.splits = {
            name: InMemoryDataset(
                (images[i] / PIXEL_MAX - mean) / std, labels[i], [names[k] for k in i.tolist()]
            )
            for name, i in indices.items()
        }

    @classmethod
    def stand_in(cls, folder: Path) -> dict[str, object]:
        """Write a small, learnable data set in the real format into ``folder``; return the args to read it.

        Tests train on it instead of the user's images: three classes of RGB noise, each with a brighter
        square in the place its name says, faint enough to take a few epochs to learn; at 20x24, so that
        resizing to ``image_size`` is exercised.
        """
        generator = torch.Generator().manual_seed(0)
        height, width = 20, 24
        for step, name in enumerate(["top-left", "middle", "bottom-right"]):
            (folder / name).mkdir(parents=True, exist_ok=True)
            top, left = 2 + 5 * step, 2 + 7 * step
            for i in range(40):
                pixels = torch.randint(0, 192, (height, width, 3), dtype=torch.uint8, generator=generator)
                pixels[top : top + 6, left : left + 6] += 64  # 191 + 64: no overflow
                image = Image.frombytes("RGB", (width, height), bytes(pixels.flatten().tolist()))
                image.save(folder / name / f"{i:03d}.png")
        return {"root": str(folder)}

    def train_dataloader(self) -> DataLoader:
        return loader(self.splits["train"], self.batch_size, self.num_workers, train=True)

    def val_dataloader(self) -> DataLoader:
        return loader(self.splits["val"], self.batch_size, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return loader(self.splits["test"], self.batch_size, self.num_workers)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
