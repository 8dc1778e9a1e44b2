"""What every checkpoint says about itself: the classes that made it, what the data gave, where it came from.

The provenance summary names the run, attempt and commit that made it (``provenance.py``); each logger gets
the commit too, in its own interface (``tag_loggers``). Read back by
``--ckpt_path`` (a checkpoint used with other data is refused), ``predict`` and ``export.py``, without the
data. Plain values only, so that checkpoints still load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import MLFlowLogger, TensorBoardLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from .provenance import Attempt
from .runs import run_folder

RECORD = "record"  # the checkpoint's key


class CheckpointRecord(Callback):
    """Writes ``record`` into every checkpoint the run saves, and the run's attempt into its provenance.json.

    At the start, global rank 0 appends the attempt to the run folder's provenance.json, puts its summary
    (run, attempt, commit, branch, whether the code had uncommitted changes) under ``record["provenance"]``
    and gives the loggers the commit; at the end, it records how the attempt ended. Nothing happens per
    epoch. Added by the command line, not the config.
    """

    def __init__(self, record: dict[str, Any], attempt: Attempt | None = None) -> None:
        self.record = record
        self.attempt = attempt

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.attempt is None or self.attempt.run is not None:
            return
        run = run_folder(trainer)  # broadcast from rank 0: every process asks
        if trainer.is_global_zero:
            self.record["provenance"] = summary = self.attempt.start(trainer, run)
            tag_loggers(trainer, summary)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.attempt is not None and trainer.is_global_zero:
            self.attempt.end(trainer, "completed")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, error: BaseException) -> None:
        if self.attempt is not None and trainer.is_global_zero:
            stopped = isinstance(error, SIGTERMException | KeyboardInterrupt)  # a signal, or Ctrl-C
            self.attempt.end(trainer, "stopped" if stopped else f"failed: {type(error).__name__}")

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RECORD] = self.record


def tag_loggers(trainer: pl.Trainer, summary: dict[str, Any]) -> None:
    """Give each logger the run's commit, branch and whether it had uncommitted changes, the logger's way."""
    tags = {
        "git_commit": summary["commit"] or f"none: {summary['why']}",
        "git_branch": summary["branch"] or "",
        "git_dirty": str(summary["dirty"]),
    }
    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger):
            # Tags, not params: a resumed run may run another commit, and MLflow params never change.
            # MLflow shows mlflow.source.git.commit as the run's commit.
            native = {"mlflow.source.git.commit": summary["commit"]} if summary["commit"] else {}
            for key, value in {**tags, **native}.items():
                logger.experiment.set_tag(logger.run_id, key, value)
            continue
        logger.log_hyperparams(tags)  # CSV and TensorBoard: hparams.yaml; W&B: the run's config
        if isinstance(logger, TensorBoardLogger):
            # TensorBoard shows hyperparameters only beside a metric: its Text tab shows these, one entry
            # per attempt (the step).
            table = "| | |\n|---|---|\n" + "\n".join(f"| {key} | {value} |" for key, value in tags.items())
            logger.experiment.add_text("provenance", table, global_step=summary["attempt"])


def recorded_data_args(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The values the data gave the model a checkpoint was saved from.

    Its record has them all; a checkpoint without one (saved outside this project's command line) has
    those the model took among its hyperparameters.
    """
    record = checkpoint.get(RECORD) or {}
    if "data_args" in record:
        return record["data_args"]
    hparams = checkpoint.get("hyper_parameters") or {}
    return {key: value for key, value in hparams.items() if not key.startswith("_")}
