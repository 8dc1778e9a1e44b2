"""The example's task facts: a classifier's accuracy, class names and probabilities.

Replace this file with your own task's facts. The machinery's tests (``tests/infra/``) assume no task.
"""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import (
    CONFIG,
    TEST_ARGS,
    best_checkpoint,
    checkpointed_runs,
    load_module,
    make_datamodule,
    run_folders,
)
from ddp import run_ddp
from metrics import read_scalars

import {{ cookiecutter.package_name }}.infra.outputs.exporting as export
from {{ cookiecutter.package_name }}.infra.outputs.batches import as_the_model_sees_it


@pytest.fixture(scope="module")
def run(trained_run: Path) -> Path:
    (run,) = checkpointed_runs(trained_run)
    return run


def chance_and_better(class_names) -> float:
    """An accuracy that only a trained model reaches: twice chance, at most 0.8."""
    return min(0.8, 2 / len(class_names))


def test_the_trained_model_classifies_well_above_chance(run):
    scalars = read_scalars(run)
    class_names = make_datamodule().model_args()["class_names"]
    assert max(value for _, value in scalars["val/acc"]) >= chance_and_better(class_names)
    assert all(0 <= value <= 1 for _, value in scalars["val/acc"] + scalars["train/acc"])
    assert any(tag.startswith("lr-") for tag in scalars), "the learning rate is logged"


def test_test_accuracy_equals_a_direct_evaluation_of_the_checkpoint(cli, run, tmp_path):
    checkpoint = best_checkpoint(run)
    cli("test", f"--ckpt_path={checkpoint}", log_dir=tmp_path)
    (tested,) = run_folders(tmp_path)
    module = load_module(checkpoint)
    datamodule = make_datamodule()
    batches = [as_the_model_sees_it(batch, module, datamodule) for batch in datamodule.test_dataloader()]
    inputs, labels = (torch.cat(parts) for parts in zip(*batches, strict=True))
    with torch.no_grad():
        logits = module(inputs)
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    scalars = read_scalars(tested)
    assert scalars["test/acc"][-1][1] == pytest.approx(accuracy, abs=1e-6)
    assert scalars["test/loss"][-1][1] == pytest.approx(module.loss(logits, labels).item(), rel=1e-5)


@pytest.mark.slow
def test_under_ddp_the_metrics_cover_the_whole_validation_set(cli, tmp_path):
    ddp_profile = "--config=configs/profiles/cpu_ddp.yaml"
    run_ddp("fit", ddp_profile, "--trainer.max_epochs=1", log_dir=tmp_path / "ddp")
    (run,) = checkpointed_runs(tmp_path / "ddp")
    checkpoint = run / "checkpoints" / "last.ckpt"
    cli("validate", f"--ckpt_path={checkpoint}", "--trainer.accelerator=cpu", log_dir=tmp_path / "single")
    (single,) = run_folders(tmp_path / "single")
    ddp, whole = read_scalars(run), read_scalars(single)
    # The accuracy's counts are summed over the processes, so it is exact; the loss (sync_dist) is a mean of
    # the processes' means, which may weigh samples slightly differently.
    assert ddp["val/acc"][-1][1] == pytest.approx(whole["val/acc"][-1][1], abs=1e-6)
    assert ddp["val/loss"][-1][1] == pytest.approx(whole["val/loss"][-1][1], rel=0.02)


def test_predictions_name_the_most_likely_class_and_probabilities_sum_to_one(cli, trained_run, tmp_path):
    logs = Path(shutil.copytree(trained_run, tmp_path / "logs"))
    cli("predict", "--ckpt_path=best", log_dir=logs)
    (path,) = logs.rglob("predictions.csv")
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    class_names = make_datamodule().model_args()["class_names"]
    probabilities = torch.tensor([[float(row[f"prob_{name}"]) for name in class_names] for row in rows])
    assert torch.allclose(probabilities.sum(1), torch.ones(len(rows)), atol=1e-4)
    assert [row["prediction"] for row in rows] == [class_names[k] for k in probabilities.argmax(1).tolist()]
    assert all(0 <= int(row["target"]) < len(class_names) for row in rows)


def test_the_export_contract_names_the_classes(run, tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    options = [f"--ckpt_path={best_checkpoint(run)}", "--format=pt2", f"--output_dir={tmp_path}"]
    export.main([*options, *TEST_ARGS])
    contract = json.loads((tmp_path / "model.json").read_text())
    class_names = make_datamodule().model_args()["class_names"]
    assert contract["data_args"]["class_names"] == class_names
    assert contract["outputs"][0]["shape"] == ["batch", len(class_names)]
    assert contract["model"] == CONFIG["model"]["class_path"]
