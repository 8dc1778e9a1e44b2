"""The training loader resumed from a checkpoint gives what the interrupted one would have given next.

These run the loader alone, the way Lightning drives it: ``state_dict()`` at a checkpoint, then in the
resumed process the global random generators restored (``RandomStateCheckpoint``) and ``load_state_dict()``
before ``iter()``. A real resumed run is in test_resilience.py.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset, DistributedSampler

from {{ cookiecutter.package_name }}.infra.faults.resumable_loader import ResumableDataLoader

BATCH_SIZE = 4


class NoisyNumbers(Dataset):
    """0..49, each with a random offset drawn when it is loaded: a random augmentation."""

    def __len__(self) -> int:
        return 50

    def __getitem__(self, index: int) -> torch.Tensor:
        return index + torch.rand(())


def make_loader(num_workers: int = 0, **kwargs) -> ResumableDataLoader:
    shuffle = "sampler" not in kwargs
    return ResumableDataLoader(
        NoisyNumbers(), batch_size=BATCH_SIZE, shuffle=shuffle, num_workers=num_workers, **kwargs
    )


def interrupt(loader: ResumableDataLoader, after: int) -> tuple[dict, torch.Tensor, list[torch.Tensor]]:
    """Iterate ``after`` batches, then checkpoint: the loader's state, the global generator's, and the
    batches an uninterrupted run goes on to get: the rest of this epoch, then the whole next one.
    """
    batches = iter(loader)
    for _ in range(after):
        next(batches)
    state, random_state = loader.state_dict(), torch.get_rng_state()
    return state, random_state, [*batches, *loader]


def resume(loader: ResumableDataLoader, state: dict, random_state: torch.Tensor) -> list[torch.Tensor]:
    """What the loader of a resumed process gives over two ``iter()``."""
    torch.set_rng_state(random_state)  # what RandomStateCheckpoint restores
    loader.load_state_dict(state)
    rest_of_epoch = iter(loader)
    if state["given"] < len(loader):  # drawn again and skipped up to the saved batch, with no trace
        assert torch.equal(torch.get_rng_state(), random_state), "skipping moved the global generator"
    return [*rest_of_epoch, *loader]


@pytest.mark.parametrize("num_workers", [0, 2], ids=["in-process", "workers"])
@pytest.mark.parametrize("after", [1, 7], ids=["first-batch", "mid-epoch"])
def test_resumed_mid_epoch_it_gives_the_same_batches_and_draws(num_workers, after):
    torch.manual_seed(0)
    original = make_loader(num_workers)
    state, random_state, expected = interrupt(original, after)
    resumed = resume(make_loader(num_workers), state, random_state)
    assert len(resumed) == len(expected) == 2 * len(original) - after
    for got, want in zip(resumed, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_saved_after_the_last_batch_the_next_epoch_is_the_same():
    torch.manual_seed(0)
    original = make_loader()
    state, random_state, expected = interrupt(original, len(original))
    assert len(expected) == len(original)  # nothing left of the ended epoch: the next one, whole
    resumed = resume(make_loader(), state, random_state)
    torch.testing.assert_close(resumed[: len(original)], expected, rtol=0, atol=0)


@pytest.mark.parametrize("at_end", [False, True], ids=["mid-epoch", "after-the-last-batch"])
def test_its_own_generator_is_restored_with_it(at_end):
    original = make_loader(generator=torch.Generator().manual_seed(5))
    state, random_state, expected = interrupt(original, len(original) if at_end else 3)
    resumed = resume(make_loader(generator=torch.Generator().manual_seed(6)), state, random_state)
    torch.testing.assert_close(resumed[: len(expected)], expected, rtol=0, atol=0)


def test_under_ddp_it_resumes_in_the_sampler_epoch_it_was_in():
    def loader_in_epoch(epoch: int) -> ResumableDataLoader:
        loader = make_loader(sampler=DistributedSampler(NoisyNumbers(), num_replicas=2, rank=1, seed=7))
        loader.sampler.set_epoch(epoch)  # what Lightning does at each epoch's start
        return loader

    torch.manual_seed(0)
    state, random_state, expected = interrupt(loader_in_epoch(3), 2)
    # A resumed run iterates before Lightning sets the epoch: the sampler is still at epoch 0.
    resumed = resume(loader_in_epoch(0), state, random_state)
    torch.testing.assert_close(resumed, expected, rtol=0, atol=0)
