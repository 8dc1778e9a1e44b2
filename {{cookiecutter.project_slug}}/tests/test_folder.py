"""FolderDataModule on the stand-in data set it writes: classes, shapes, splits and the errors users see."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from {{ cookiecutter.package_name }}.data.folder import FolderDataModule


@pytest.fixture
def args(tmp_path: Path) -> dict:
    return FolderDataModule.stand_in(tmp_path)


def images_per_class(args: dict) -> dict[str, int]:
    return {folder.name: len(list(folder.glob("*.png"))) for folder in Path(args["root"]).iterdir()}


def all_images(data: FolderDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    data.setup("fit")
    splits = [data.splits[name] for name in ("train", "val", "test")]
    return torch.cat([s.inputs for s in splits]), torch.cat([s.targets for s in splits])


def test_class_names_are_the_sorted_folders(args: dict) -> None:
    assert FolderDataModule(**args).class_names == tuple(sorted(images_per_class(args)))
    assert len(images_per_class(args)) >= 2


@pytest.mark.parametrize(("channels", "image_size"), [(3, (32, 32)), (1, (12, 20))])
def test_batches_match_the_declared_shape_and_normalisation(args: dict, channels: int, image_size) -> None:
    data = FolderDataModule(**args, image_size=image_size, channels=channels, batch_size=8)
    assert data.input_shape == (channels, *image_size)
    data.setup("fit")
    images, labels = next(iter(data.train_dataloader()))
    assert images.dtype == torch.float32 and images.shape == (8, *data.input_shape)
    assert labels.dtype == torch.int64 and labels.shape == (8,)
    norm = data.normalization
    mean, std = (torch.tensor(norm[key]).view(-1, 1, 1) for key in ("mean", "std"))
    assert len(mean) == len(std) == channels
    # Undoing the documented (pixels / scale - mean) / std must give back whole pixel values in [0, scale].
    pixels = (images * std + mean) * norm["scale"]
    assert torch.allclose(pixels, pixels.round(), atol=1e-3)
    assert 0 <= pixels.min() < pixels.max() <= norm["scale"]
    assert labels.min() >= 0 and labels.max() < len(data.class_names)


def test_splits_are_disjoint_and_cover_every_image_once(args: dict) -> None:
    data = FolderDataModule(**args)
    images, labels = all_images(data)
    assert min(len(data.splits[name]) for name in ("train", "val", "test")) > 0
    # The stand-in images hold noise, so no two are alike: as many distinct images as files means each once.
    assert len(torch.unique(images.flatten(1), dim=0)) == len(images) == sum(images_per_class(args).values())
    counts = torch.bincount(labels, minlength=len(data.class_names)).tolist()
    assert counts == [images_per_class(args)[name] for name in data.class_names]


def test_the_split_depends_on_the_seed_alone(args: dict) -> None:
    first, again, other = (FolderDataModule(**args, split_seed=seed) for seed in (1, 1, 2))
    for data in (first, again, other):
        data.setup("fit")
    assert torch.equal(first.splits["test"].inputs, again.splits["test"].inputs)
    assert not torch.equal(first.splits["test"].inputs, other.splits["test"].inputs)


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"root": "no/such/folder"}, "data.root", "no/such/folder"),
        ({"channels": 2}, "data.channels", "2"),
        ({"image_size": (0, 32)}, "data.image_size", "0, 32"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "data.val_fraction", "0.5"),
        ({"test_fraction": 0.0}, "data.test_fraction", "0.0"),
    ],
)
def test_bad_settings_name_the_field_and_value(args: dict, change: dict, field: str, value: str) -> None:
    with pytest.raises(MisconfigurationException) as error:
        FolderDataModule(**{**args, **change}).setup("fit")
    assert f"{field} " in str(error.value) and value in str(error.value)


def test_too_few_images_for_a_split_says_how_many_there_are(args: dict) -> None:
    total = sum(images_per_class(args).values())
    with pytest.raises(MisconfigurationException, match=f"data.val_fraction .* {total} images"):
        FolderDataModule(**args, val_fraction=0.4 / total).setup("fit")


@pytest.mark.parametrize("remove_folders", [True, False], ids=["one class", "empty class"])
def test_too_few_classes_or_an_empty_class_folder(args: dict, remove_folders: bool) -> None:
    first, *others = sorted(Path(args["root"]).iterdir())
    for folder in others if remove_folders else [first]:
        for file in folder.iterdir():
            file.unlink()
        if remove_folders:
            folder.rmdir()
    with pytest.raises(MisconfigurationException) as error:
        FolderDataModule(**args).setup("fit")
    assert "data.root" in str(error.value)
    assert ("1 class folders" if remove_folders else f"'{first.name}' has no images") in str(error.value)


@pytest.mark.parametrize(
    "damage", [lambda png: b"not an image", lambda png: png[: len(png) // 2]], ids=["garbage", "truncated"]
)
def test_a_corrupt_image_is_named(args: dict, damage: Callable[[bytes], bytes]) -> None:
    victim = sorted(Path(args["root"]).rglob("*.png"))[5]
    victim.write_bytes(damage(victim.read_bytes()))
    with pytest.raises(MisconfigurationException, match=victim.name):
        FolderDataModule(**args).setup("fit")


def test_other_file_types_and_hidden_files_are_ignored(args: dict) -> None:
    expected = sum(images_per_class(args).values())
    root = Path(args["root"])
    folder = next(root.iterdir())
    for junk in (folder / "notes.txt", folder / ".broken.png", root / ".ipynb_checkpoints" / "x.png"):
        junk.parent.mkdir(exist_ok=True)
        junk.write_bytes(b"not an image")
    image = next(folder.glob("*.png"))
    image.rename(image.with_suffix(".PNG"))  # extensions are matched whatever their case
    data = FolderDataModule(**args)
    assert ".ipynb_checkpoints" not in data.class_names
    assert len(all_images(data)[0]) == expected
