"""The folder example's images as LitData shards, for data that outgrows one disk or that many nodes share.

``python -m`` this module writes them: every image of a folder of class folders resized once, split as the
folder example splits it, into ``<output>/train``, ``val`` and ``test`` (LitData's ``optimize``), with the
class names and image shape in ``<output>/classes``. The output may be a local folder or an object-store URL
(``s3://bucket/shards``, ``gs://``...). ``ShardsDataModule`` then streams them with LitData's
``StreamingDataset``: each DDP process reads its own share of the chunks, fetched on demand into a local
cache, and the training loader's place in its epoch is saved in every checkpoint. Needs the optional
``streaming`` extra: ``pip install -e ".[streaming]"``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import ArgumentParser
from litdata import StreamingDataLoader, StreamingDataset, optimize
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader

from ..infra.command.cli import default_config
from .folder import FolderDataModule
from .images import read_image, transforms
from .pixels import ImageBatches, write_sample_images
from .tensors import split_indices

MODULE = __spec__.name  # this module's import name, also when it runs with python -m


def quiet_known_noise() -> None:
    """Silence two warnings that do not apply here.

    Lightning's, for an IterableDataset with a length and workers: LitData gives each worker its own share
    of the chunks, which is what it asks to check. Torch's, for the read-only buffer LitData reads pixels
    from: the samples are never written to.
    """
    warnings.filterwarnings("ignore", "Your `IterableDataset` has `__len__` defined")
    warnings.filterwarnings("ignore", "The given buffer is not writable", module="litdata")


class Shard:
    """What ``optimize`` stores for one ``(file, label)``: the resized pixels, the label and the file name."""

    def __init__(self, root: Path, image_size: tuple[int, int], channels: int) -> None:
        self.root, self.resize, self.channels = root, transforms(image_size, None, False), channels

    def __call__(self, item: tuple[str, int]) -> dict[str, Any]:
        name, label = item
        return {"image": self.resize(read_image(self.root / name, self.channels)), "label": label, "id": name}


def write_shards(data: FolderDataModule, output: str, num_workers: int | None = None) -> None:
    """Write the images of ``data`` (a folder example's DataModule) as shards into ``output``."""
    files, labels = data.image_files()
    fractions = {"test": data.test_fraction, "val": data.val_fraction, "train": None}
    options: dict[str, Any] = {"chunk_bytes": "64MB", "num_workers": num_workers or data.workers()}
    # Spawned workers would import torch and this package again, seconds each; forked ones need not.
    options.update(mode="overwrite", verbose=False, start_method="fork" if sys.platform == "linux" else None)
    for split, rows in split_indices(len(files), fractions, data.split_seed).items():
        items = [(os.fsdecode(files[row]), int(labels[row])) for row in rows.tolist()]
        shard = Shard(data.root, data.image_size, data.input_shape[0])
        optimize(fn=shard, inputs=items, output_dir=f"{output}/{split}", **options)
    shape = list(data.input_shape)
    classes = [{"label": k, "name": name, "shape": shape} for k, name in enumerate(data.class_names)]
    optimize(fn=dict, inputs=classes, output_dir=f"{output}/classes", **{**options, "num_workers": 1})


class ShardSamples(StreamingDataset):
    """A split of the shards as ``(image, label)`` samples, the training one randomly cropped and flipped."""

    def __init__(self, input_dir: str, transform: Any, **kwargs: Any) -> None:
        super().__init__(input_dir, **kwargs)
        self.augment = transform

    def __getitem__(self, index: Any) -> tuple[Tensor, int]:
        sample = super().__getitem__(index)
        return self.augment(sample["image"]), sample["label"]


class ShardsDataModule(ImageBatches):
    """The images that :func:`write_shards` wrote, streamed from a local folder or an object store.

    Batches, ``model_args()`` and the normalisation on the device are the folder example's, so a model
    trained on one takes the other's data.

    Args:
        shards: Where :func:`write_shards` wrote: a local folder or a URL (``s3://bucket/shards``).
        batch_size: Samples per batch (per device under DDP).
        num_workers: DataLoader worker processes; None: this process's share of the cores, at most 8.
        crop_scale: Training only: each image is a random crop of this share of its area, resized back;
            None: the whole image.
        flip: Training only: mirror each image left to right half the time.
        cache_dir: Where chunks fetched from an object store are kept; None: LitData's default.
    """

    def __init__(
        self,
        shards: str = "data/shards",
        batch_size: int = 32,
        num_workers: int | None = None,
        crop_scale: tuple[float, float] | None = (0.35, 1.0),
        flip: bool = True,
        cache_dir: str | None = None,
    ) -> None:
        if "://" not in shards and not (Path(shards) / "classes").is_dir():
            raise MisconfigurationException(
                f"data.shards {shards!r}: no shards there; write them with python -m {MODULE} {shards}"
            )
        classes = StreamingDataset(f"{shards}/classes", cache_dir=cache_dir)
        records = sorted((classes[k] for k in range(len(classes))), key=lambda record: record["label"])
        super().__init__(records[0]["shape"], [record["name"] for record in records], batch_size, num_workers)
        self.shards, self.crop_scale, self.flip, self.cache_dir = shards, crop_scale, flip, cache_dir

    def loader(self, split: str) -> DataLoader:
        train = split == "train"
        quiet_known_noise()
        transform = transforms(self.input_shape[1:], self.crop_scale if train else None, self.flip and train)
        seed, place = lightning_seed(), f"{self.shards}/{split}"
        dataset = ShardSamples(place, transform, shuffle=train, cache_dir=self.cache_dir, seed=seed)
        workers, pin_memory = self.workers(), torch.cuda.is_available()
        return StreamingDataLoader(
            dataset, batch_size=self.batch_size, num_workers=workers, pin_memory=pin_memory
        )

    @classmethod
    def stand_in(cls, folder: Path) -> dict[str, object]:
        """Write the sample images into ``folder``, then their shards; return the args that read them."""
        write_sample_images(folder / "images")
        write_shards(FolderDataModule(root=str(folder / "images")), str(folder / "shards"))
        return {"shards": str(folder / "shards")}


def lightning_seed() -> int:
    """Lightning's seed (seed_everything), which orders the chunks and samples of each epoch."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def main(argv: list[str] | None = None) -> None:
    """``python -m`` this module ``OUTPUT [--root ...]``: the folder's images as shards in ``OUTPUT``."""
    parser = ArgumentParser(description="Write a folder of class folders as LitData shards.")
    parser.add_argument("output", help="a local folder, or an object-store URL such as s3://bucket/shards")
    skip = {"batch_size", "crop_scale", "flip", "cache"}
    parser.add_class_arguments(FolderDataModule, skip=skip)
    # Defaults: the folder, image size and split of configs/config.yaml, if the folder example is its data.
    data = yaml.safe_load(default_config().read_text(encoding="utf-8")).get("data") or {}
    if str(data.get("class_path", "")).endswith(".FolderDataModule"):
        configured = data.get("init_args") or {}
        parser.set_defaults({key: value for key, value in configured.items() if key not in skip})
    options = parser.parse_args(argv)
    output = options.pop("output")
    try:
        write_shards(FolderDataModule(**options.as_dict()), output)
    except MisconfigurationException as error:
        sys.exit(f"error: {error}")
    print(f"Wrote the shards of {options.root} into {output}/: train with --data {MODULE}.ShardsDataModule")


if __name__ == "__main__":
    main()
