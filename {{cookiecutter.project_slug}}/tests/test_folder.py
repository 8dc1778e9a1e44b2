"""FolderDataModule on the stand-in data set it writes: classes, shapes, splits, augmentation and errors."""

from __future__ import annotations

import signal
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import probes
import pytest
import torch
from conftest import PROBES_ENV, assert_same_end, checkpointed_runs, load_checkpoint, run_train
from PIL import Image
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from {{ cookiecutter.package_name }}.data.folder import EXTENSIONS, FolderDataModule, main
from {{ cookiecutter.package_name }}.data.images import read_image


@pytest.fixture
def args(tmp_path: Path) -> dict:
    return FolderDataModule.stand_in(tmp_path / "images")


def images_per_class(args: dict) -> dict[str, int]:
    return {folder.name: len(list(folder.glob("*.png"))) for folder in Path(args["root"]).iterdir()}


def split_files(data: FolderDataModule) -> dict[str, list[str]]:
    data.setup("fit")
    return {name: data.splits[name].sample_ids for name in ("train", "val", "test")}


def epoch_batches(data: FolderDataModule, epoch: int) -> torch.Tensor:
    loader = data.train_dataloader()
    loader.sampler.set_epoch(epoch)  # as Lightning does at the start of each epoch
    return torch.cat([images for images, _ in loader])


def one_line_error(subject: object, action: Callable[[object], object]) -> str:
    """The error ``action(subject)`` raises: one line, without a traceback."""
    with pytest.raises(MisconfigurationException) as error:
        action(subject)
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def test_class_names_are_the_sorted_folders(args: dict) -> None:
    assert FolderDataModule(**args).class_names == tuple(sorted(images_per_class(args)))
    assert len(images_per_class(args)) >= 2


@pytest.mark.parametrize(("channels", "image_size"), [(3, (32, 32)), (1, (12, 20))])
def test_batches_are_pixels_until_the_device_normalises_them(args: dict, channels: int, image_size) -> None:
    data = FolderDataModule(**args, image_size=image_size, channels=channels, batch_size=8, num_workers=0)
    assert data.input_shape == (channels, *image_size)
    data.setup("fit")
    pixels, labels = next(iter(data.val_dataloader()))
    assert pixels.dtype == torch.uint8 and pixels.shape == (8, *data.input_shape)
    assert labels.dtype == torch.int64 and labels.shape == (8,)
    images, same_labels = data.on_after_batch_transfer((pixels, labels), 0)
    assert images.dtype == torch.float32 and same_labels is labels
    norm = data.normalization
    mean, std = (torch.tensor(norm[key]).view(-1, 1, 1) for key in ("mean", "std"))
    assert len(mean) == len(std) == channels
    # The documented recipe, (pixels / scale - mean) / std, is what the network gets.
    torch.testing.assert_close(images, (pixels / norm["scale"] - mean) / std)
    assert labels.min() >= 0 and labels.max() < len(data.class_names)


def test_splits_are_disjoint_and_cover_every_image_once(args: dict) -> None:
    data = FolderDataModule(**args)
    splits = split_files(data)
    every = [name for files in splits.values() for name in files]
    assert min(map(len, splits.values())) > 0
    assert len(set(every)) == len(every) == sum(images_per_class(args).values())
    labels = torch.cat([data.splits[name].labels[data.splits[name].rows] for name in splits])
    counts = torch.bincount(labels, minlength=len(data.class_names)).tolist()
    assert counts == [images_per_class(args)[name] for name in data.class_names]


def test_the_split_depends_on_the_seed_alone(args: dict) -> None:
    first, again, other = (split_files(FolderDataModule(**args, split_seed=seed)) for seed in (1, 1, 2))
    assert first == again and first["test"] != other["test"]


def test_augmentation_is_for_training_only_and_drawn_from_the_seed_and_epoch(args: dict) -> None:
    data = FolderDataModule(**args, num_workers=0, cache=None)
    data.setup("fit")
    assert not torch.equal(epoch_batches(data, 0), epoch_batches(data, 1))
    # The same seed and epoch give the same crops and flips whichever worker loads an image.
    with_workers = FolderDataModule(**args, num_workers=2, cache=None)
    with_workers.setup("fit")
    assert torch.equal(epoch_batches(data, 1), epoch_batches(with_workers, 1))
    evaluation = [torch.cat([images for images, _ in data.val_dataloader()]) for _ in range(2)]
    assert torch.equal(*evaluation)
    # Each image's own seed draws its crop and flip: other seeds, other samples; none without augmentation.
    train = data.splits["train"]
    assert not all(torch.equal(train[(0, 1)][0], train[(0, seed)][0]) for seed in range(2, 6))
    plain = FolderDataModule(**args, num_workers=0, cache=None, crop_scale=None, flip=False)
    plain.setup("fit")
    train = plain.splits["train"]
    assert all(torch.equal(train[(0, 1)][0], train[(0, seed)][0]) for seed in range(2, 6))


@pytest.mark.parametrize("channels", [1, 3])
def test_every_format_reads_to_the_declared_channels(tmp_path: Path, channels: int) -> None:
    image = Image.new("RGB", (30, 20), (200, 60, 10))
    mode = {1: "L", 3: "RGB"}[channels]
    for extension in EXTENSIONS:
        path = tmp_path / f"image{extension}"
        image.save(path)
        pixels = read_image(path, channels)
        assert pixels.dtype == torch.uint8 and pixels.shape == (channels, 20, 30), extension
        # Lossy formats (JPEG, WebP) and GIF's palette move a colour by a few levels, no more.
        expected = torch.tensor(image.convert(mode).getpixel((0, 0))).view(-1).float()
        assert torch.allclose(pixels.float().mean((1, 2)), expected, atol=4), extension


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"root": "no/such/folder"}, "data.root", "no/such/folder"),
        ({"channels": 2}, "data.channels", "2"),
        ({"image_size": (0, 32)}, "data.image_size", "0, 32"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "data.val_fraction", "0.5"),
        ({"test_fraction": 0.0}, "data.test_fraction", "0.0"),
        ({"crop_scale": (0.8, 0.2)}, "data.crop_scale", "0.8, 0.2"),
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


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: what a reader sees of a decompression bomb first."""
    chunk = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


DAMAGES = {
    "garbage": lambda png: b"not an image",
    "truncated": lambda png: png[: len(png) // 2],
    "decompression bomb": lambda png: png_header(20000, 20000),
}


def read_everything(data: FolderDataModule) -> None:
    data.setup("fit")
    for split in ("train", "val", "test"):
        list(data.loader(split))


@pytest.mark.parametrize(
    ("damage", "workers"),
    [*((damage, 0) for damage in DAMAGES), ("truncated", 1)],
    ids=[*DAMAGES, "truncated, read by a worker"],
)
def test_an_unreadable_image_is_named_in_one_line(args: dict, damage: str, workers: int) -> None:
    victim = sorted(Path(args["root"]).rglob("*.png"))[5]
    victim.write_bytes(DAMAGES[damage](victim.read_bytes()))
    # A line break in a file name is quoted: the error stays one line.
    victim = victim.rename(victim.with_name("bad\nname.png"))
    # A worker's error is raised again in this process with the worker's traceback as its message.
    data = FolderDataModule(**args, num_workers=workers)
    assert repr(str(victim)) in one_line_error(data, read_everything)
    assert not list(Path(args["root"]).rglob("*.npy")), "no cache is left behind"


def test_a_class_folder_that_links_to_the_root_is_refused(args: dict) -> None:
    root = Path(args["root"])
    (root / "everything").symlink_to(root.resolve(), target_is_directory=True)
    message = one_line_error(args, lambda args: FolderDataModule(**args))
    assert "class folder 'everything'" in message and "data.root itself" in message


def test_a_class_folder_linked_from_elsewhere_is_followed(args: dict, tmp_path: Path) -> None:
    root = Path(args["root"])
    moved = (root / "bluish").rename(tmp_path / "elsewhere")
    (root / "bluish").symlink_to(moved, target_is_directory=True)
    assert sum(map(len, split_files(FolderDataModule(**args)).values())) == 120


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
    assert sum(map(len, split_files(data).values())) == expected


def test_one_command_writes_a_sample_set_into_an_empty_folder_only(tmp_path: Path, capsys) -> None:
    images = tmp_path / "images"
    main([str(images)])  # python -m {{ cookiecutter.package_name }}.data.folder <folder>
    assert f"into {images}/" in capsys.readouterr().out
    assert split_files(FolderDataModule(root=str(images)))["train"]
    with pytest.raises(SystemExit) as refused:
        main([str(images)])
    assert str(refused.value) == (
        f"error: {images} is not empty: the sample images go into a new or empty folder"
    )


@pytest.mark.slow
def test_stopped_mid_epoch_with_workers_and_augmentation_it_resumes_to_the_same_weights(cli, tmp_path: Path):
    # Decoded from the files by two persistent workers, randomly cropped and flipped, deterministic kernels;
    # stopped in the second epoch, where the workers have already served one.
    run = (
        "fit",
        "--trainer.max_epochs=3",
        "--trainer.limit_train_batches=5",
        "--trainer.deterministic=true",
        "--data.init_args.batch_size=8",
        "--data.init_args.num_workers=2",
        "--data.init_args.cache=null",
        "--data.init_args.crop_scale=[0.35, 1.0]",
        "--data.init_args.flip=true",
    )
    cli(*run, log_dir=tmp_path / "uninterrupted")
    stop = probes.option("KillAt", epoch=1, batch=2, signal="SIGTERM")
    stopped = run_train(*run, *stop, log_dir=tmp_path / "stopped", check=False, env=PROBES_ENV)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    (saved,) = checkpointed_runs(tmp_path / "stopped")
    assert load_checkpoint(saved / "checkpoints" / "last.ckpt")["global_step"] == 5 + 4  # mid-epoch
    cli(*run, "--ckpt_path=last", log_dir=tmp_path / "stopped")
    (uninterrupted,) = checkpointed_runs(tmp_path / "uninterrupted")
    assert_same_end(checkpointed_runs(tmp_path / "stopped")[-1], uninterrupted)
