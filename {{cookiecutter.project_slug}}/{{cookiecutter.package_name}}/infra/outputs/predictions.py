"""Predictions to a CSV file: the file I/O of ``predict``, so that the LightningModule never sees a path."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor

from ..command.provenance import read_attempts
from ..command.runs import run_folder
from ..faults.durable import write_text
from .batches import split_batch

Columns = dict[str, list[Any]]  # column name -> one value per sample


class PredictionWriter(BasePredictionWriter):
    """Writes what ``python train.py predict`` computes to one CSV file, a row per sample in dataset order.

    The columns: ``index``, the sample's position in the predicted dataset; ``id`` where the dataset names
    its samples (a ``sample_ids`` attribute: file paths, say); ``target`` where the batches hold one
    (``batches.py``); then what ``predict_step`` returns: a tensor, written as ``prediction``, or a dict of
    tensors or lists, a column each. A value of several numbers per sample takes a column per number,
    ``<name>_<k>`` (one number, of shape ``(batch, 1)``, a column of its own name).

    Beside it, a JSON file of the same name says what it holds and where it comes from: the run that
    predicted (whose provenance.json records how), and the checkpoint it used: its path, epoch and step,
    and the commit and run that trained it.

    Under DDP every process predicts its share; rank 0 gathers them, drops the duplicates a padding sampler
    adds, checks that every sample is there once, and writes the file. Predictions stay in memory until the
    end of the epoch, which is fine for evaluation sets; stream per-rank files for very large ones.

    Args:
        output_path: CSV file to write. ``None`` writes ``predictions.csv`` into the run folder (next to the
            run's ``config.yaml``, which records the checkpoint).
    """

    def __init__(self, output_path: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        if output_path is not None and Path(output_path).suffix == ".json":
            # The description beside the predictions takes that name.
            raise MisconfigurationException(f"PredictionWriter output_path {output_path}: give a .csv file")
        self.output_path = output_path
        self.path: Path | None = None
        self.run: Path | None = None
        self.targets: list[Tensor | None] = []
        self.written = ""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "predict":
            # run_folder is broadcast from rank 0, so every process asks for it, not only rank 0.
            self.run = run_folder(trainer)
            self.path = Path(self.output_path or self.run / "predictions.csv")

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.targets = []

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.targets.append(split_batch(pl_module, batch)[1])

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Sequence[Sequence[int]]],
    ) -> None:
        if len(batch_indices) != 1:
            raise ValueError(f"PredictionWriter handles one predict dataloader, got {len(batch_indices)}")
        indices = [index for batch in batch_indices[0] for index in batch]
        columns = concatenate(
            [batch_columns(output, target) for output, target in zip(predictions, self.targets, strict=True)]
        )
        shares = [(indices, columns)]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shares = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(shares, (indices, columns))
        if trainer.is_global_zero:
            loaders = trainer.predict_dataloaders
            dataset = (loaders[0] if isinstance(loaders, list | tuple) else loaders).dataset
            order, columns = merge(shares, len(dataset))
            ids = getattr(dataset, "sample_ids", None)
            columns = {**({"id": [ids[i] for i in order]} if ids is not None else {}), **columns}
            self._write(order, columns)
            self._describe(trainer, len(order), ["index", *columns])

    def _write(self, indices: list[int], columns: Columns) -> None:
        assert self.path is not None, "setup() sets the path before predicting"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed: a crash never leaves a truncated file behind.
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["index", *columns])
            for row, index in enumerate(indices):
                writer.writerow([index, *(cell(values[row]) for values in columns.values())])
        os.replace(partial, self.path)
        self.written = f"Wrote {len(indices)} predictions to {self.path}"

    def _describe(self, trainer: pl.Trainer, rows: int, columns: list[str]) -> None:
        """Write the JSON file beside the predictions: their columns, run and checkpoint."""
        assert self.path is not None and self.run is not None, "setup() sets them before predicting"
        attempts = read_attempts(self.run)  # the command line's record of this run, if it ran this one
        checkpoint = attempts[-1]["checkpoint"] if attempts else {"path": trainer.ckpt_path}
        about = {"file": self.path.name, "rows": rows, "columns": columns, "run": str(self.run.resolve())}
        about |= {"checkpoint": checkpoint}
        write_text(self.path.with_suffix(".json"), json.dumps(about, indent=2) + "\n")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Said at teardown, once the progress bar has closed, so that the line stands on its own.
        if stage == "predict" and self.written:
            rank_zero_info(self.written)
            self.written = ""


def batch_columns(output: Any, target: Tensor | None) -> Columns:
    """The columns of one batch: its target, if any, then what ``predict_step`` returned for it."""
    if isinstance(output, Tensor):
        output = {"prediction": output}
    if not isinstance(output, dict):
        raise MisconfigurationException(
            f"predict_step returned a {type(output).__name__}: return a tensor, or a dict of tensors or lists"
            " with one value per sample"
        )
    columns: Columns = {}
    for name, values in {**({"target": target} if target is not None else {}), **output}.items():
        if isinstance(values, Tensor):
            values = values.detach().cpu()
            values = values.flatten(1) if values.dim() > 1 else values
            if values.dim() == 2 and values.shape[1] == 1:  # (batch, 1), say a regression's: one column
                values = values[:, 0]
            if values.dim() == 2:
                columns |= {f"{name}_{k}": values[:, k].tolist() for k in range(values.shape[1])}
                continue
            values = values.tolist()
        columns[name] = list(values)
    return columns


def concatenate(batches: list[Columns]) -> Columns:
    """The columns of every batch, one after the other; every batch must have the same columns."""
    if not batches:
        return {}
    names = list(batches[0])
    for columns in batches:
        if list(columns) != names:
            raise MisconfigurationException(
                f"predict_step returned {', '.join(columns)} for one batch and {', '.join(names)} for another"
            )
    return {name: [value for columns in batches for value in columns[name]] for name in names}


def merge(shares: Sequence[tuple[list[int], Columns]], num_samples: int) -> tuple[list[int], Columns]:
    """The rows of all processes, one per sample index, in index order (the first of duplicates).

    Raises if a sample is missing: a file that silently lacks rows would be worse than no file.
    """
    first: dict[int, tuple[Columns, int]] = {}
    for indices, columns in shares:
        for position, index in enumerate(indices):
            first.setdefault(index, (columns, position))
    order = sorted(first)
    if order != list(range(num_samples)):
        raise RuntimeError(f"predictions cover {len(order)} distinct samples of {num_samples}")
    names = list(shares[0][1])
    return order, {name: [first[i][0][name][first[i][1]] for i in order] for name in names}


def cell(value: Any) -> Any:
    """A value as the CSV shows it: floats with six significant digits, the rest as they are."""
    return f"{value:.6g}" if isinstance(value, float) else value
