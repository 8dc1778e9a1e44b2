"""What an export feeds the model and how it names what goes in and out: real samples, forward's names.

The inputs are real samples of the configured data, so that the export sees, and its check compares, the
shapes, dtypes and values the model is used on: a token model gets token ids, not zeros or random floats. A
DataModule with no predict, test or validation batches leaves the LightningModule's own
``example_input_array`` (Lightning's attribute) as the source.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor

from .batches import as_the_model_sees_it, split_batch

SAMPLES = 8  # samples taken from the data: exported with half, checked with one and with all


def example_inputs(module: pl.LightningModule, datamodule: pl.LightningDataModule) -> tuple[Tensor, ...]:
    """Up to ``SAMPLES`` samples of the data, as ``forward``'s positional arguments (each batch-first)."""
    datamodule.prepare_data()
    datamodule.setup("predict")
    for hook in ("predict_dataloader", "test_dataloader", "val_dataloader"):
        try:
            loader = getattr(datamodule, hook)()
        except (NotImplementedError, MisconfigurationException, KeyError, AttributeError):
            continue  # Lightning's default hooks raise for a loader the DataModule does not define
        collected: list[tuple[Tensor, ...]] = []
        for batch in loader:
            collected.append(split_batch(module, as_the_model_sees_it(batch, module, datamodule))[0])
            if sum(len(inputs[0]) for inputs in collected) >= SAMPLES:
                break
        if collected:
            return tuple(torch.cat(parts)[:SAMPLES] for parts in zip(*collected, strict=True))
    example = module.example_input_array
    if example is None:
        raise MisconfigurationException(
            f"export.py found no batch to export with: {type(datamodule).__name__} has no predict, test or"
            f" validation batches, and {type(module).__name__} no example_input_array"
        )
    return tuple(example) if isinstance(example, tuple | list) else (example,)


def flatten_outputs(outputs: Any) -> list[Tensor]:
    """``forward``'s result as a list of tensors: a tensor, a tuple of tensors, or a dict of them."""
    if isinstance(outputs, Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        return list(outputs.values())
    return list(outputs)


def output_names(outputs: Any) -> list[str]:
    """``output`` for a tensor, the keys of a dict, ``output_<k>`` for a tuple."""
    if isinstance(outputs, Tensor):
        return ["output"]
    if isinstance(outputs, dict):
        return [str(key) for key in outputs]
    return [f"output_{k}" for k in range(len(outputs))]


def input_names(module: pl.LightningModule, inputs: tuple[Tensor, ...]) -> list[str]:
    """The names of ``forward``'s first positional parameters, one per input."""
    parameters = list(inspect.signature(module.forward).parameters)
    if len(parameters) < len(inputs):
        return [f"input_{k}" for k in range(len(inputs))]
    return parameters[: len(inputs)]


def signature(name: str, value: Tensor) -> dict[str, Any]:
    """An input's or output's entry in model.json: its name, dtype and shape, the batch first."""
    dtype = str(value.dtype).removeprefix("torch.")
    return {"name": name, "dtype": dtype, "shape": ["batch", *value.shape[1:]]}
