"""The folder example's images as LitData shards: written from a local folder, streamed, trained on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import checkpointed_runs, load_checkpoint
from metrics import read_scalars
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from {{ cookiecutter.package_name }}.data.folder import FolderDataModule
from {{ cookiecutter.package_name }}.data.shards import MODULE, ShardsDataModule, main


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[FolderDataModule, Path]:
    """The sample images, and their shards written by the command the README gives."""
    folder = tmp_path_factory.mktemp("data")
    images = FolderDataModule(**FolderDataModule.stand_in(folder / "images"), num_workers=0)
    main([str(folder / "shards"), f"--root={images.root}"])
    return images, folder / "shards"


def test_the_shards_hold_the_folder_split_and_what_the_model_is_built_from(written) -> None:
    images, shards = written
    data = ShardsDataModule(str(shards), num_workers=0)
    assert data.model_args() == images.model_args()
    images.setup("fit")
    for split in ("train", "val", "test"):
        dataset = data.loader(split).dataset
        ids = sorted(super(type(dataset), dataset).__getitem__(k)["id"] for k in range(len(dataset)))
        assert ids == sorted(images.splits[split].sample_ids), split
    # Without augmentation, a sample holds the very pixels the folder example gives for its file.
    val = data.loader("val").dataset
    sample = super(type(val), val).__getitem__(0)
    position = images.splits["val"].sample_ids.index(sample["id"])
    assert torch.equal(val[0][0], images.splits["val"][position][0])


def test_training_streams_the_shards(cli, written, tmp_path: Path) -> None:
    _, shards = written
    options = (f"--data={MODULE}.ShardsDataModule", f"--data.shards={shards}", "--data.num_workers=2")
    cli("fit", *options, "--trainer.max_epochs=2", log_dir=tmp_path)
    (run,) = checkpointed_runs(tmp_path)
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["epoch"] == 1
    assert checkpoint["hyper_parameters"]["class_names"] == ["bluish", "greenish", "reddish"]
    assert len(read_scalars(run)["val/acc"]) == 2
    last = run / "checkpoints" / "last.ckpt"
    tested = cli("test", *options, f"--ckpt_path={last}", log_dir=tmp_path / "test")
    assert "test/acc" in tested.stdout


def test_no_shards_is_one_line_naming_the_command(tmp_path: Path) -> None:
    with pytest.raises(MisconfigurationException, match=f"python -m {MODULE} {tmp_path}"):
        ShardsDataModule(str(tmp_path))
