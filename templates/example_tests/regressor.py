"""The example's task facts: a regression's error, explained variance, and predictions in the target's units.

Replace this file with your own task's facts. The machinery's tests (``tests/infra/``) assume no task.
"""

import csv
import shutil
from pathlib import Path

import pytest
import torch
from conftest import best_checkpoint, checkpointed_runs, load_module, make_datamodule, run_folders
from ddp import run_ddp
from metrics import read_scalars


@pytest.fixture(scope="module")
def run(trained_run: Path) -> Path:
    (run,) = checkpointed_runs(trained_run)
    return run


def test_the_trained_model_explains_some_of_the_variance(run):
    # R² above 0: better than always predicting the training mean.
    assert max(value for _, value in read_scalars(run)["val/r2"]) > 0


def test_the_target_statistics_are_those_of_the_training_split():
    datamodule = make_datamodule()
    targets = datamodule.train_dataloader().dataset.targets
    given = datamodule.model_args()
    assert given["target_mean"] == pytest.approx(targets.mean().item())
    assert given["target_std"] == pytest.approx(targets.std().item())


def test_test_error_equals_a_direct_evaluation_of_the_checkpoint(cli, run, tmp_path):
    checkpoint = best_checkpoint(run)
    cli("test", f"--ckpt_path={checkpoint}", log_dir=tmp_path)
    (tested,) = run_folders(tmp_path)
    module = load_module(checkpoint)
    batches = list(make_datamodule().test_dataloader())
    features, targets = (torch.cat(parts) for parts in zip(*batches, strict=True))
    with torch.no_grad():
        predicted = module(features)
    scalars = read_scalars(tested)
    assert scalars["test/mae"][-1][1] == pytest.approx((predicted - targets).abs().mean().item(), rel=1e-5)
    assert scalars["test/loss"][-1][1] == pytest.approx(module.loss(predicted, targets).item(), rel=1e-5)


@pytest.mark.slow
def test_under_ddp_the_metrics_cover_the_whole_validation_set(cli, tmp_path):
    ddp_profile = "--config=configs/profiles/cpu_ddp.yaml"
    run_ddp("fit", ddp_profile, "--trainer.max_epochs=1", log_dir=tmp_path / "ddp")
    (run,) = checkpointed_runs(tmp_path / "ddp")
    checkpoint = run / "checkpoints" / "last.ckpt"
    cli("validate", f"--ckpt_path={checkpoint}", "--trainer.accelerator=cpu", log_dir=tmp_path / "single")
    (single,) = run_folders(tmp_path / "single")
    ddp, whole = read_scalars(run), read_scalars(single)
    # R² and MAE gather their sums over the processes (torchmetrics); the loss (sync_dist) is a mean of the
    # processes' means, which may weigh samples slightly differently.
    for name in ("val/r2", "val/mae"):
        assert ddp[name][-1][1] == pytest.approx(whole[name][-1][1], rel=1e-5), name
    assert ddp["val/loss"][-1][1] == pytest.approx(whole["val/loss"][-1][1], rel=0.02)


def test_predictions_are_in_the_targets_units(cli, trained_run, tmp_path):
    logs = Path(shutil.copytree(trained_run, tmp_path / "logs"))
    cli("predict", "--ckpt_path=best", log_dir=logs)
    (path,) = logs.rglob("predictions.csv")
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    predicted = torch.tensor([float(row["prediction"]) for row in rows])
    targets = torch.tensor([float(row["target"]) for row in rows])
    # Of the targets' order of magnitude, not standardised values around 0.
    assert abs(predicted.mean() - targets.mean()) < targets.std()
    assert predicted.std() > 0
