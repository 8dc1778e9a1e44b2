"""Predictions to a CSV file: the file I/O of ``predict``, so that the LightningModule never sees a path."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

from ..command.runs import run_folder


class PredictionWriter(BasePredictionWriter):
    """Writes what ``python train.py predict`` computes to one CSV file.

    One row per sample of the predicted split, in dataset order: ``index`` (position of the sample in that
    split), ``prediction`` (the most likely class name), then ``prob_<class name>`` for every class. The
    LightningModule's ``predict_step`` must return class probabilities, one row per sample.

    Under DDP every process predicts its share; rank 0 gathers them, drops the duplicates a padding sampler
    adds, checks that every sample is there once, and writes the file. Predictions stay in memory until the
    end of the epoch, which is fine for evaluation sets; stream per-rank files for very large ones.

    Args:
        output_path: CSV file to write. ``None`` writes ``predictions.csv`` into the run folder
            (``logs/<name>/version_N/``, next to the run's ``config.yaml`` that records the checkpoint).
    """

    def __init__(self, output_path: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output_path = output_path
        self.path: Path | None = None
        self.written = ""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "predict":
            # run_folder is broadcast from rank 0, so every process asks for it, not only rank 0.
            self.path = Path(self.output_path or run_folder(trainer) / "predictions.csv")

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Sequence[Tensor],
        batch_indices: Sequence[Sequence[Sequence[int]]],
    ) -> None:
        if len(batch_indices) != 1:
            raise ValueError(f"PredictionWriter handles one predict dataloader, got {len(batch_indices)}")
        indices = torch.tensor([index for batch in batch_indices[0] for index in batch], dtype=torch.long)
        probabilities = torch.cat(list(predictions)).float().cpu()
        shares = [(indices, probabilities)]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shares = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(shares, (indices, probabilities))
        if trainer.is_global_zero:
            loaders = trainer.predict_dataloaders
            loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
            num_samples = len(loader.dataset)
            self._write(*merge(shares, num_samples), class_names=class_names_of(trainer, probabilities))

    def _write(self, indices: Tensor, probabilities: Tensor, class_names: Sequence[str]) -> None:
        assert self.path is not None, "setup() sets the path before predicting"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed: a crash never leaves a truncated file behind.
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["index", "prediction", *(f"prob_{name}" for name in class_names)])
            for index, row in zip(indices.tolist(), probabilities.tolist(), strict=True):
                best = max(range(len(row)), key=row.__getitem__)
                writer.writerow([index, class_names[best], *(f"{p:.6g}" for p in row)])
        os.replace(partial, self.path)
        self.written = f"Wrote {len(indices)} predictions to {self.path}"

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Said at teardown, once the progress bar has closed, so that the line stands on its own.
        if stage == "predict" and self.written:
            rank_zero_info(self.written)
            self.written = ""


def merge(shares: Sequence[tuple[Tensor, Tensor]], num_samples: int) -> tuple[Tensor, Tensor]:
    """Concatenate the predictions of all processes, one per sample index, sorted by index.

    Raises if a sample is missing: a file that silently lacks rows would be worse than no file.
    """
    indices = torch.cat([share[0] for share in shares])
    probabilities = torch.cat([share[1] for share in shares])
    unique, first = first_occurrences(indices)
    if not torch.equal(unique, torch.arange(num_samples)):
        raise RuntimeError(f"predictions cover {len(unique)} distinct samples of {num_samples}")
    return unique, probabilities[first]


def first_occurrences(values: Tensor) -> tuple[Tensor, Tensor]:
    """The sorted distinct ``values`` and, for each, the position of its first occurrence."""
    unique, inverse = torch.unique(values, sorted=True, return_inverse=True)
    positions = torch.arange(len(values))
    first = torch.full((len(unique),), len(values), dtype=torch.long).scatter_reduce(
        0, inverse, positions, reduce="amin"
    )
    return unique, first


def class_names_of(trainer: pl.Trainer, probabilities: Tensor) -> list[str]:
    """The model's ``class_names`` (the data contract it was trained with), or class numbers without one."""
    names = trainer.lightning_module.hparams.get("class_names")
    return list(names) if names else [str(k) for k in range(probabilities.shape[1])]
