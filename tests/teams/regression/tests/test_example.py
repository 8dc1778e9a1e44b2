"""Our task's facts: the regressor learns, and predicts in the right range."""

import csv
import shutil
from pathlib import Path

from conftest import checkpointed_runs
from metrics import read_scalars


def test_the_validation_error_falls(trained_run):
    (run,) = checkpointed_runs(trained_run)
    losses = [value for _, value in read_scalars(run)["val_loss"]]
    assert min(losses) < losses[0]


def test_predictions_are_of_the_targets_size(cli, trained_run, tmp_path):
    logs = Path(shutil.copytree(trained_run, tmp_path / "logs"))
    cli("predict", "--ckpt_path=best", log_dir=logs)
    (path,) = logs.rglob("predictions.csv")
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 66
    assert all(0 < float(row["prediction"]) < 4 for row in rows)
