"""The cache of resized images: built once, read by later runs, rebuilt when files change, never half-read."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image

from {{ cookiecutter.package_name }}.data import image_cache
from {{ cookiecutter.package_name }}.data.folder import FolderDataModule


@pytest.fixture
def args(tmp_path: Path) -> dict:
    return {**FolderDataModule.stand_in(tmp_path / "images"), "num_workers": 0}


def caches(args: dict) -> list[Path]:
    return sorted((Path(args["root"]) / ".cache").glob("*.npy"))


def evaluation_images(data: FolderDataModule) -> torch.Tensor:
    data.setup("fit")
    return torch.cat([images for split in ("val", "test") for images, _ in data.loader(split)])


def test_built_once_it_gives_the_very_pixels_of_the_files(args: dict, monkeypatch) -> None:
    first = FolderDataModule(**args)
    first.setup("fit")
    (cache,) = caches(args)
    assert first.splits["train"].cache == cache
    built = cache.stat()
    monkeypatch.setattr(image_cache, "write", lambda *_: pytest.fail("the cache was built again"))
    later = FolderDataModule(**args)
    assert torch.equal(evaluation_images(later), evaluation_images(FolderDataModule(**args, cache=None)))
    assert later.splits["val"].cache == cache and cache.stat().st_mtime_ns == built.st_mtime_ns


def test_a_changed_file_makes_a_new_cache_and_the_old_one_goes(args: dict) -> None:
    data = FolderDataModule(**args)
    data.setup("fit")
    (old,) = caches(args)
    changed = Path(args["root"]) / data.splits["val"].sample_ids[0]
    Image.new("RGB", (20, 24), (255, 0, 0)).save(changed)
    again = FolderDataModule(**args)
    first_image = evaluation_images(again)[0]
    (new,) = caches(args)
    assert new != old and not old.exists()
    assert torch.equal(first_image[0], torch.full((32, 32), 255, dtype=torch.uint8))


def build_then_die(args: dict, after: int) -> None:
    """Build the cache in this (forked) process, and die by SIGKILL after ``after`` images are written."""
    written = []
    real_write = image_cache.write

    def batches_then_kill(path, shape, batches):
        def counted():
            for batch in batches:
                written.append(len(batch))
                if sum(written) >= after:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield batch

        real_write(path, shape, counted())

    image_cache.write = batches_then_kill
    FolderDataModule(**args).setup("fit")


def test_a_build_killed_half_way_leaves_no_cache_and_the_next_run_builds_it(args: dict) -> None:
    child = multiprocessing.get_context("fork").Process(target=build_then_die, args=(args, 64))
    child.start()
    child.join()
    assert child.exitcode == -signal.SIGKILL
    assert caches(args) == [], "a cut-short build never gets the name that later runs trust"
    data = FolderDataModule(**args)
    data.setup("fit")
    assert caches(args) == [data.splits["train"].cache]


def build_together(args: dict, barrier, record: Path) -> None:
    real_write = image_cache.write

    def noted(*arguments) -> None:
        with record.open("a") as file:
            file.write(f"{os.getpid()}\n")
        real_write(*arguments)

    image_cache.write = noted
    barrier.wait()
    FolderDataModule(**args).setup("fit")


def test_processes_started_together_build_it_once(args: dict, tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier, record = context.Barrier(3), tmp_path / "builders"
    children = [context.Process(target=build_together, args=(args, barrier, record)) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    assert [child.exitcode for child in children] == [0, 0, 0]
    assert len(record.read_text().splitlines()) == 1 and len(caches(args)) == 1


def test_without_room_the_images_are_decoded_every_epoch(args: dict, monkeypatch, caplog) -> None:
    room = image_cache.shutil.disk_usage(args["root"])._replace(free=1000)
    monkeypatch.setattr(image_cache.shutil, "disk_usage", lambda _: room)
    data = FolderDataModule(**args)
    with caplog.at_level(logging.INFO):
        images = evaluation_images(data)
    assert data.splits["train"].cache is None and caches(args) == []
    (said,) = [record.getMessage() for record in caplog.records if "data.cache" in record.getMessage()]
    assert "more than half of the" in said and "decoding the images every epoch" in said
    assert torch.equal(images, evaluation_images(FolderDataModule(**args, cache=None)))
