"""The link between a trial of ``sweep.py`` and its Lightning run: the metric reported, the run pruned."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from ..command.runs import run_folder
from .identity import mark_trial
from .study import RUN


class ReportToTrial(Callback):
    """Reports ``metric`` to the Optuna trial after each validation, and stops the run once it is pruned.

    The run stops like one that early stopping ends, at the end of the epoch: its checkpoints and logs
    are complete, so a pruned trial is an ordinary run that stopped early. A metric that the run does not
    log stops it at once (``missing`` names what it logs instead).

    Args:
        trial: The Optuna trial this run is.
        metric: The logged metric the sweep optimises, e.g. ``val/acc``.
        maximize: Whether a higher value is better.
        history: What an interrupted trial reported, by epoch, when this run resumes its checkpoint: the
            epochs before the first one this run validates are reported as they were.
        marker: The ``trial.yaml`` written into the run folder when the run starts: which study and trial
            it belongs to (``identity.py``).
    """

    def __init__(
        self,
        trial: optuna.Trial,
        metric: str,
        maximize: bool,
        history: dict[int, float] | None = None,
        marker: dict | None = None,
    ) -> None:
        self.trial, self.metric, self.maximize, self.marker = trial, metric, maximize, marker
        self.history = dict(history or {})
        self.values: list[float] = []
        self.pruned_at: int | None = None
        self.missing: list[str] | None = None
        self.run: Path | None = None

    @property
    def best(self) -> float | None:
        """The best value reported so far (NaN if the run diverged), None before the first."""
        finite = [value for value in self.values if math.isfinite(value)]
        if len(finite) < len(self.values) or not finite:
            return math.nan if self.values else None
        return max(finite) if self.maximize else min(finite)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.run = run_folder(trainer)
        # Recorded now, so that a rerun of this trial, if it is interrupted, finds its checkpoints.
        self.trial.set_user_attr(RUN, str(self.run))
        if self.marker is not None and trainer.is_global_zero:
            mark_trial(self.run, self.marker)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            self.missing = sorted(trainer.callback_metrics)
            trainer.should_stop = True
            return
        # A resumed rerun first reports the interrupted trial's earlier epochs as they were. An epoch that
        # trial reported after its last checkpoint, this run trains again: reported once, with this value.
        epochs = [epoch for epoch in sorted(self.history) if epoch <= trainer.current_epoch]
        reports = {epoch: self.history.pop(epoch) for epoch in epochs}
        reports[trainer.current_epoch] = float(value)
        for epoch, reported in reports.items():
            self.values.append(reported)
            # One step per epoch: the pruner compares trials at the same epoch.
            self.trial.report(reported, step=epoch)
        if self.trial.should_prune():
            self.pruned_at = trainer.current_epoch
            trainer.should_stop = True
