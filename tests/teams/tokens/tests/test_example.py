"""Our task's facts: the markers are found."""

import csv
import shutil
from pathlib import Path

from conftest import checkpointed_runs
from metrics import read_scalars


def test_the_markers_are_found(trained_run):
    (run,) = checkpointed_runs(trained_run)
    assert max(value for _, value in read_scalars(run)["val/accuracy"]) > 0.9


def test_predictions_name_a_marker(cli, trained_run, tmp_path):
    logs = Path(shutil.copytree(trained_run, tmp_path / "logs"))
    cli("predict", "--ckpt_path=best", log_dir=logs)
    (path,) = logs.rglob("predictions.csv")
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert {row["marker"] for row in rows} <= {"red", "green", "blue"}
    assert sum(row["marker"] == ["red", "green", "blue"][int(row["target"])] for row in rows) > 0.9 * len(
        rows
    )
