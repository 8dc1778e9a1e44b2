import torch

from {{ cookiecutter.package_name }}.data.dataset import DigitsDataModule, load_digit_tensors


def make_datamodule(**kwargs) -> DigitsDataModule:
    datamodule = DigitsDataModule(**kwargs)
    datamodule.setup("fit")
    return datamodule


def test_split_sizes_cover_every_sample_once():
    datamodule = make_datamodule(val_fraction=0.15, test_fraction=0.15)
    sizes = {name: len(split) for name, split in datamodule.splits.items()}
    assert sizes == {"train": 1257, "val": 270, "test": 270}
    split_labels = torch.cat([split.labels for split in datamodule.splits.values()])
    _, all_labels = load_digit_tensors()
    assert torch.equal(torch.bincount(split_labels), torch.bincount(all_labels))


def test_batches_have_the_declared_shapes():
    datamodule = make_datamodule(batch_size=32)
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.shape == (32, *DigitsDataModule.input_shape)
    assert images.dtype == torch.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert labels.shape == (32,)
    assert labels.dtype == torch.long
    assert set(labels.tolist()) <= set(range(DigitsDataModule.num_classes))


def test_split_depends_only_on_split_seed():
    first = make_datamodule(split_seed=1)
    again = make_datamodule(split_seed=1)
    other = make_datamodule(split_seed=2)
    assert torch.equal(first.splits["val"].images, again.splits["val"].images)
    assert not torch.equal(first.splits["val"].images, other.splits["val"].images)


def test_evaluation_loaders_keep_order():
    datamodule = make_datamodule(batch_size=50)
    first = torch.cat([labels for _, labels in datamodule.val_dataloader()])
    second = torch.cat([labels for _, labels in datamodule.val_dataloader()])
    assert torch.equal(first, second)
    assert torch.equal(first, datamodule.splits["val"].labels)
