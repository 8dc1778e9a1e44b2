"""What a batch holds for the machinery: the model's inputs (``forward``'s arguments) and the target.

``predict`` writes the target beside each prediction, and ``export.py`` feeds the inputs of real batches to
the exported model. The rule is Lightning's own examples' ``x, y = batch``; a LightningModule whose batches
look otherwise defines ``split_batch(batch)``, returning ``(inputs, target)``: the inputs a tensor or a
tuple of ``forward``'s positional arguments, the target a tensor or None.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from pytorch_lightning.utilities.model_helpers import is_overridden
from torch import Tensor

TRANSFER_HOOKS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")


def as_the_model_sees_it(
    batch: Any, module: pl.LightningModule, datamodule: pl.LightningDataModule | None, dataloader_idx: int = 0
) -> Any:
    """A loader's ``batch`` after the hooks Lightning runs between the loader and the step.

    The DataModule's hook where it defines one, else the LightningModule's (Lightning's own rule): a
    DataModule may give uint8 images that ``on_after_batch_transfer`` normalises on the device, say.
    """
    for name in TRANSFER_HOOKS:
        owner = datamodule if datamodule is not None and is_overridden(name, datamodule) else module
        if name == "transfer_batch_to_device":
            batch = owner.transfer_batch_to_device(batch, module.device, dataloader_idx)
        else:
            batch = getattr(owner, name)(batch, dataloader_idx)
    return batch


def split_batch(module: pl.LightningModule, batch: Any) -> tuple[tuple[Tensor, ...], Tensor | None]:
    """The inputs of ``forward`` (a tuple of its positional arguments) and the target of ``batch``."""
    hook = getattr(module, "split_batch", None)
    if hook is not None:
        inputs, target = hook(batch)
    elif isinstance(batch, Tensor):
        inputs, target = batch, None
    elif isinstance(batch, tuple | list) and len(batch) in (1, 2):
        inputs, target = batch[0], (batch[1] if len(batch) == 2 else None)
    else:
        raise MisconfigurationException(
            f"batches of {describe(batch)}: define split_batch(batch) on {type(module).__name__}, returning"
            " (inputs, target), to say which part goes into forward"
        )
    return (tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)), target


def describe(batch: Any) -> str:
    """A batch's structure in a few words, e.g. ``a dict with keys input_ids, labels``."""
    if isinstance(batch, dict):
        return f"a dict with keys {', '.join(map(str, batch))}"
    if isinstance(batch, tuple | list):
        return f"a {type(batch).__name__} of {len(batch)}"
    return f"type {type(batch).__name__}"
