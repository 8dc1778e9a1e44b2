"""The MNIST example's own files: download, checks, the IDX format (test_data.py has the shared tests)."""

import gzip

import pytest
import torch

from {{ cookiecutter.package_name }}.data.mnist import MNISTDataModule
from {{ cookiecutter.package_name }}.data.mnist_files import SHA256, MissingDataError, fetch_mnist, read_idx, write_idx

# A port nothing listens on: a download attempt fails at once, without leaving this machine.
UNREACHABLE = ("http://127.0.0.1:9/",)


@pytest.fixture
def fake_root(tmp_path):
    arguments = MNISTDataModule.stand_in(tmp_path / "MNIST", train_size=200, test_size=50)
    return tmp_path / "MNIST", arguments["checksums"]


def make_datamodule(fake_root, **kwargs) -> MNISTDataModule:
    root, checksums = fake_root
    datamodule = MNISTDataModule(data_dir=str(root), checksums=checksums, **kwargs)
    datamodule.setup("fit")
    return datamodule


def test_idx_files_round_trip(tmp_path):
    values = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    write_idx(tmp_path / "x.gz", values)
    assert torch.equal(read_idx(tmp_path / "x.gz"), values)


def test_a_file_that_is_not_idx_is_refused(tmp_path):
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"<html>Not Found</html>"))
    with pytest.raises(MissingDataError, match="not an IDX file"):
        read_idx(tmp_path / "x.gz")


def test_splits_and_batches(fake_root):
    datamodule = make_datamodule(fake_root, val_fraction=0.1, batch_size=16)
    sizes = {name: len(split) for name, split in datamodule.splits.items()}
    assert sizes == {"train": 180, "val": 20, "test": 50}
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.shape == (16, *MNISTDataModule.input_shape)
    assert images.dtype == torch.float32 and images.min() >= 0.0 and images.max() <= 1.0
    assert labels.dtype == torch.long and set(labels.tolist()) <= set(range(10))


def test_present_files_are_checked_not_downloaded(fake_root):
    root, checksums = fake_root
    fetch_mnist(root, checksums, mirrors=UNREACHABLE)  # nothing missing: no network needed


def test_a_damaged_file_is_refused(fake_root):
    root, checksums = fake_root
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"damaged")
    with pytest.raises(MissingDataError, match="t10k-labels-idx1-ubyte.gz has the wrong SHA-256"):
        fetch_mnist(root, checksums, mirrors=UNREACHABLE)


def test_offline_says_what_to_download_and_where(tmp_path):
    with pytest.raises(MissingDataError) as error:
        fetch_mnist(tmp_path, SHA256, mirrors=UNREACHABLE)
    message = str(error.value)
    assert message.startswith("cannot download train-images-idx3-ubyte.gz (http://127.0.0.1:9/")
    assert f"Download {', '.join(SHA256)} from http://127.0.0.1:9/ and put them in {tmp_path}/" in message
    assert not list(tmp_path.iterdir()), "nothing half-downloaded is left behind"
