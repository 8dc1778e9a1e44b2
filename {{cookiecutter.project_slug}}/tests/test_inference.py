"""From checkpoint to numbers: validate, test and predict through train.py agree with training and each other.

The validation metrics logged during training are the only evaluation "logged at the end of training": the
best checkpoint was chosen by them. Test metrics are checked against a direct evaluation of the same weights.
"""

import csv
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import load_checkpoint, read_scalars, run_train

from {{ cookiecutter.package_name }}.data.dataset import DigitsDataModule
from {{ cookiecutter.package_name }}.export import load_network


def run_dirs(log_dir: Path) -> set[Path]:
    return set((log_dir / "digits").glob("version_*"))


def evaluate(*args: str, log_dir: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """Run ``train.py <args>``; return the run folder it created and the finished process."""
    before = run_dirs(log_dir)
    result = run_train(*args, log_dir=log_dir)
    (created,) = run_dirs(log_dir) - before
    return created, result


def last_value(run: Path, tag: str) -> float:
    return read_scalars(run)[tag][-1][1]


@pytest.fixture(scope="module")
def log_dir(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained run's logs: evaluation runs add their folders here, not to ``trained_run``."""
    return Path(shutil.copytree(trained_run, tmp_path_factory.mktemp("evaluations") / "logs"))


@pytest.fixture(scope="module")
def training(log_dir: Path) -> dict:
    """What training recorded: its scalars, and the best checkpoint with the score it was chosen by."""
    run = log_dir / "digits" / "version_0"
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    # The ModelCheckpoint that monitors a metric is the one with a best score.
    (state,) = [s for s in last["callbacks"].values() if s.get("best_model_score") is not None]
    return {
        "scalars": read_scalars(run),
        "last": run / "checkpoints" / "last.ckpt",
        "best": Path(state["best_model_path"]),
        "best_score": float(state["best_model_score"]),
    }


@pytest.fixture(scope="module")
def test_split() -> tuple[torch.Tensor, torch.Tensor]:
    datamodule = DigitsDataModule()  # the split of the config the trained run used
    datamodule.setup("test")
    split = datamodule.splits["test"]
    return split.images, split.labels


@pytest.fixture(scope="module")
def tested_best(log_dir: Path) -> tuple[Path, subprocess.CompletedProcess]:
    return evaluate("test", "--ckpt_path=best", log_dir=log_dir)


def test_validate_best_reproduces_the_metrics_logged_when_it_was_saved(log_dir, training):
    checkpoint = load_checkpoint(training["best"])
    logged = training["scalars"]
    # One validation per epoch; the checkpoint's epoch picks the values logged right before it was saved.
    assert len(logged["val/loss"]) == load_checkpoint(training["last"])["epoch"] + 1
    loss, acc = (logged[tag][checkpoint["epoch"]][1] for tag in ("val/loss", "val/acc"))
    # The best checkpoint is the epoch of lowest validation loss (with EarlyStopping, not necessarily the
    # last one), and it records the score it was chosen by.
    assert loss == min(value for _, value in logged["val/loss"])
    assert training["best_score"] == pytest.approx(loss, rel=1e-6)

    run, result = evaluate("validate", "--ckpt_path=best", log_dir=log_dir)
    assert "val/acc" in result.stdout and "Validate metric" in result.stdout  # the printed table
    assert last_value(run, "val/loss") == pytest.approx(loss, rel=1e-6)
    assert last_value(run, "val/acc") == pytest.approx(acc, abs=1e-6)


def test_test_metrics_equal_a_direct_evaluation_of_the_checkpoint(training, test_split, tested_best):
    run, result = tested_best
    assert "test/acc" in result.stdout and "Test metric" in result.stdout
    net, _ = load_network(training["best"])
    images, labels = test_split
    with torch.no_grad():
        logits = net(images)
    assert last_value(run, "test/loss") == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    assert last_value(run, "test/acc") == pytest.approx(accuracy, abs=1e-6)
    assert accuracy >= 0.8  # a trained model, so the equality above is not between two chance levels


def read_predictions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_predict_writes_one_row_per_test_sample(log_dir, test_split, tested_best):
    run, result = evaluate("predict", "--ckpt_path=best", log_dir=log_dir)
    path = run / "predictions.csv"
    assert f"Wrote 270 predictions to {path}" in result.stdout + result.stderr
    rows = read_predictions(path)
    class_names = DigitsDataModule.class_names
    assert list(rows[0]) == ["index", "prediction", *(f"prob_{name}" for name in class_names)]
    assert [int(row["index"]) for row in rows] == list(range(270))
    probabilities = torch.tensor([[float(row[f"prob_{k}"]) for k in range(10)] for row in rows])
    assert torch.allclose(probabilities.sum(1), torch.ones(270), atol=1e-4)
    predicted = torch.tensor([int(row["prediction"]) for row in rows])
    assert torch.equal(predicted, probabilities.argmax(1))
    _, labels = test_split
    accuracy = (predicted == labels).float().mean().item()
    assert accuracy == pytest.approx(last_value(tested_best[0], "test/acc"), abs=1e-6)


@pytest.mark.slow
def test_predict_under_ddp_writes_every_sample_once(log_dir, training, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two processes on two cores, not two times all cores
    # 269 test samples: the two processes get unequal shares (a padding sampler would repeat one).
    args = ["--data.test_fraction=0.1497", "--data.batch_size=50"]
    ddp = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]
    run, result = evaluate("predict", "--ckpt_path=best", *args, *ddp, log_dir=log_dir)
    assert (result.stdout + result.stderr).count("Wrote 269 predictions") == 1
    rows = read_predictions(run / "predictions.csv")
    assert [int(row["index"]) for row in rows] == list(range(269))

    # Every row holds the prediction for the sample its index names, whichever process computed it.
    datamodule = DigitsDataModule(test_fraction=0.1497)
    datamodule.setup("predict")
    net, _ = load_network(training["best"])
    with torch.no_grad():
        expected = net(datamodule.splits["test"].images).softmax(1)
    written = torch.tensor([[float(row[f"prob_{k}"]) for k in range(10)] for row in rows])
    assert torch.allclose(written, expected, atol=1e-5)
