"""The configured DataModule keeps its contract with the model: whatever the data, these hold."""

import inspect

import pytest
import torch
from conftest import data_class, make_datamodule


@pytest.fixture(scope="module")
def datamodule():
    return make_datamodule()


def test_contract_is_declared_before_setup():
    datamodule = make_datamodule()
    channels, height, width = datamodule.input_shape
    assert channels >= 1 and height >= 1 and width >= 1
    assert len(datamodule.class_names) >= 2
    assert len(set(datamodule.class_names)) == len(datamodule.class_names), "class names must be distinct"
    assert all(isinstance(name, str) and name for name in datamodule.class_names)
    norm = datamodule.normalization
    assert norm["scale"] > 0 and len(norm["mean"]) == len(norm["std"]) == channels


def test_every_split_has_samples_of_the_declared_shape(datamodule):
    assert {"train", "val", "test"} <= set(datamodule.splits)
    loaders = {
        "train": datamodule.train_dataloader(),
        "val": datamodule.val_dataloader(),
        "test": datamodule.test_dataloader(),
        "predict": datamodule.predict_dataloader(),
    }
    for name, loader in loaders.items():
        images, labels = next(iter(loader))
        assert images.shape[1:] == tuple(datamodule.input_shape), name
        assert images.dtype == torch.float32 and torch.isfinite(images).all(), name
        assert labels.dtype == torch.long and labels.shape == (len(images),), name
        assert labels.min() >= 0 and labels.max() < len(datamodule.class_names), name


def test_the_split_is_reproducible_and_follows_its_seed():
    first, again = make_datamodule(), make_datamodule()
    images = [next(iter(datamodule.val_dataloader()))[0] for datamodule in (first, again)]
    assert torch.equal(images[0], images[1]), "the same settings must give the same split"
    seeds = [name for name in inspect.signature(data_class()).parameters if "seed" in name]
    if not seeds:
        pytest.skip(f"{data_class().__name__} takes no seed argument")
    others = [make_datamodule(**{seeds[0]: value}) for value in (1, 2)]
    images = [next(iter(datamodule.val_dataloader()))[0] for datamodule in others]
    assert not torch.equal(images[0], images[1]), f"{seeds[0]} must change the split"


def test_evaluation_loaders_keep_their_order(datamodule):
    first = torch.cat([labels for _, labels in datamodule.val_dataloader()])
    second = torch.cat([labels for _, labels in datamodule.val_dataloader()])
    assert torch.equal(first, second)
    assert len(first) == len(datamodule.splits["val"])


def test_training_batches_are_shuffled(datamodule):
    torch.manual_seed(0)
    first = torch.cat([labels for _, labels in datamodule.train_dataloader()])
    second = torch.cat([labels for _, labels in datamodule.train_dataloader()])
    assert len(first) == len(datamodule.splits["train"])
    assert not torch.equal(first, second)


def test_the_training_loader_resumes_where_a_checkpoint_left_it(datamodule):
    """A run stopped mid-epoch resumes on the batches it would have had (``ResumableDataLoader``)."""
    loader = datamodule.train_dataloader()
    resumable = all(callable(getattr(loader, name, None)) for name in ("state_dict", "load_state_dict"))
    assert resumable, (
        f"a {type(loader).__name__} cannot resume mid-epoch: make the training loader a ResumableDataLoader "
        "(infra/faults/resumable_loader.py)"
    )
    assert len(loader) >= 2
    torch.manual_seed(0)
    batches = iter(loader)
    next(batches)
    state, random_state = loader.state_dict(), torch.get_rng_state()
    rest = torch.cat([labels for _, labels in batches])
    resumed = datamodule.train_dataloader()
    torch.set_rng_state(random_state)  # as the checkpoint's random states are restored
    resumed.load_state_dict(state)
    assert torch.equal(torch.cat([labels for _, labels in resumed]), rest)
