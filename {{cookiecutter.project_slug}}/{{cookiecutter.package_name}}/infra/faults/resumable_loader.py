"""A training DataLoader that a resumed run continues at the very batch where its checkpoint was saved."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader


class ResumableDataLoader(DataLoader):
    """A DataLoader whose place in the epoch is saved with every checkpoint.

    Lightning saves ``state_dict()`` in each checkpoint and, when a run resumes from one saved mid-epoch
    (SIGTERM, preemption), hands it to ``load_state_dict()`` before iterating. Without the two, the resumed
    epoch starts over on a new shuffle, so it trains on other batches than an uninterrupted run would, and
    Lightning warns that the loader is not resumable.

    The state is where the epoch began (the random generator that shuffles it, and the sampler's epoch
    under DDP) and how many batches it has given. The resumed loader draws the same order again and skips
    those batches. Skipping loads them, in worker processes too, so that random augmentations stay in step;
    the global random generators are left as the checkpoint restored them. Map-style datasets only.
    """

    _epoch_start: dict[str, Any] | None = None
    _given = 0
    _resume: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        resume, self._resume = self._resume, None
        if resume and resume["given"] < len(self):
            batches = self._replay(resume)
            self._given = resume["given"]
        else:
            if resume:  # saved after the epoch's last batch: the next epoch draws where the generator stood
                self._generator().set_state(resume["generator"])
            batches = self._start_epoch()
            self._given = 0
        return self._count(batches)

    def state_dict(self) -> dict[str, Any]:
        if self._epoch_start is None:
            return {}
        return {**self._epoch_start, "given": self._given, "generator": self._generator().get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume = state_dict or None

    def _generator(self) -> torch.Generator:
        return self.generator if self.generator is not None else torch.default_generator

    def _start_epoch(self) -> Iterator[Any]:
        self._epoch_start = {
            "start_generator": self._generator().get_state(),
            "epoch": getattr(self.sampler, "epoch", None),
        }
        return super().__iter__()

    def _count(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            self._given += 1
            yield batch

    def _replay(self, state: dict[str, Any]) -> Iterator[Any]:
        """The saved epoch's batches from where it stopped; the global random generators stay as they are."""
        torch_state, python_state = torch.get_rng_state(), random.getstate()
        self._generator().set_state(state["start_generator"])
        if state["epoch"] is not None:
            self.sampler.set_epoch(state["epoch"])
        batches = self._start_epoch()
        for _ in range(state["given"]):
            next(batches)
        torch.set_rng_state(torch_state)
        random.setstate(python_state)
        return batches
