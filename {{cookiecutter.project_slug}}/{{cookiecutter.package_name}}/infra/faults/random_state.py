"""The random generators, saved with every checkpoint: a resumed run draws what an uninterrupted one would."""

from __future__ import annotations

import random
from typing import Any

import torch
from pytorch_lightning.callbacks import Callback


class RandomStateCheckpoint(Callback):
    """Saves the random number generators with each checkpoint and restores them on resume.

    Lightning restores weights, optimizer, schedule and loop counters, but not the generators that shuffle
    the training data and draw dropout masks; without them a resumed run drifts away from an uninterrupted
    one. The states are plain tensors and integers, so checkpoints still load with ``weights_only=True``.
    """

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        if "cuda" in state_dict and torch.cuda.is_available():
            # A run saved on more GPUs than this one has (a resume or an evaluation on fewer): one each.
            for device, cuda_state in enumerate(state_dict["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, device)
