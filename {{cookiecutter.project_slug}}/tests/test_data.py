"""The configured DataModule: what any data must do for the machinery, whatever its task and shapes."""

import inspect
import json

import pytest
import torch
from conftest import CONFIG, STAND_IN, configured_class, make_datamodule, make_model, require_resumable_loader
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from {{ cookiecutter.package_name }}.infra.command.linking import data_args
from {{ cookiecutter.package_name }}.infra.outputs.batches import as_the_model_sees_it, split_batch


@pytest.fixture(scope="module")
def datamodule():
    return make_datamodule()


def loaders(datamodule) -> dict:
    """Every loader the DataModule defines, by stage."""
    found = {}
    for stage in ("train", "val", "test", "predict"):
        try:
            found[stage] = getattr(datamodule, f"{stage}_dataloader")()
        except MisconfigurationException:  # Lightning's default hook, for a loader the DataModule lacks
            continue
    return found


def inputs_of(model, loader) -> torch.Tensor:
    """The first input of every batch of ``loader``, concatenated."""
    return torch.cat([split_batch(model, batch)[0][0] for batch in loader])


def test_what_the_data_gives_the_model_is_plain_and_known_before_setup():
    if not hasattr(configured_class("data"), "model_args"):
        pytest.skip(f"{configured_class('data').__name__} has no model_args(): it gives the model nothing")
    fresh = configured_class("data")(**{**CONFIG["data"].get("init_args", {}), **STAND_IN})
    given = data_args(fresh)  # before prepare_data and setup, as the command line asks
    assert given, "model_args() gives nothing"
    # Plain values survive JSON, YAML and torch.load(weights_only=True) unchanged.
    assert json.loads(json.dumps(given)) == given


def test_every_loader_gives_batches_the_model_takes(datamodule):
    model = make_model(datamodule).eval()
    found = loaders(datamodule)
    assert {"train", "val"} <= set(found), f"the DataModule defines {sorted(found)} loaders"
    for stage, loader in found.items():
        inputs, _ = split_batch(model, as_the_model_sees_it(next(iter(loader)), model, datamodule))
        with torch.no_grad():
            model(*inputs)
        assert len({len(value) for value in inputs}) == 1, f"{stage}: inputs of different batch sizes"


def test_the_split_is_reproducible_and_follows_its_seed():
    model = make_model(make_datamodule())

    def first_inputs(datamodule):
        return split_batch(model, next(iter(datamodule.val_dataloader())))[0][0]

    assert torch.equal(first_inputs(make_datamodule()), first_inputs(make_datamodule()))
    seeds = [name for name in inspect.signature(configured_class("data")).parameters if "seed" in name]
    if not seeds:
        pytest.skip(f"{configured_class('data').__name__} takes no seed argument")
    others = [first_inputs(make_datamodule(**{seeds[0]: value})) for value in (1, 2)]
    assert not torch.equal(*others), f"{seeds[0]} must change the split"


def test_evaluation_loaders_keep_their_order(datamodule):
    model = make_model(datamodule)
    first, second = (inputs_of(model, datamodule.val_dataloader()) for _ in range(2))
    assert torch.equal(first, second)


def test_training_batches_are_shuffled(datamodule):
    model = make_model(datamodule)
    loader = datamodule.train_dataloader()
    torch.manual_seed(0)
    epochs = []
    for epoch in range(2):
        # What Lightning does at the start of each epoch, for samplers that draw their order from it.
        for sampler in (loader.sampler, getattr(loader.batch_sampler, "sampler", None)):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
        epochs.append(inputs_of(model, loader))
    assert len(epochs[0]) == len(epochs[1]) and not torch.equal(*epochs)


def test_the_training_loader_resumes_where_a_checkpoint_left_it(datamodule):
    """A run stopped mid-epoch resumes on the batches it would have had (``ResumableDataLoader``)."""
    require_resumable_loader()
    loader = datamodule.train_dataloader()
    model = make_model(datamodule)
    assert len(loader) >= 2
    torch.manual_seed(0)
    batches = iter(loader)
    next(batches)
    state, random_state = loader.state_dict(), torch.get_rng_state()
    rest = torch.cat([split_batch(model, batch)[0][0] for batch in batches])
    resumed = datamodule.train_dataloader()
    torch.set_rng_state(random_state)  # as the checkpoint's random states are restored
    resumed.load_state_dict(state)
    assert torch.equal(torch.cat([split_batch(model, batch)[0][0] for batch in resumed]), rest)
