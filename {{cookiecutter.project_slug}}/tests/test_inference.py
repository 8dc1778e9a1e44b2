"""From checkpoint to numbers: validate, test and predict through train.py agree with training and each other.

The validation metrics logged during training are the only evaluation "logged at the end of training": the
best checkpoint was chosen by them. Test metrics are checked against a direct evaluation of the same weights.
"""

import csv
import shutil
from pathlib import Path

import pytest
import torch
from conftest import (
    Result,
    best_checkpoint,
    checkpointed_runs,
    load_checkpoint,
    make_datamodule,
    run_folders,
)
from ddp import run_ddp
from metrics import read_scalars

from {{ cookiecutter.package_name }}.infra.outputs.predictions import merge
from {{ cookiecutter.package_name }}.lightning.module import ImageClassifier


def evaluate(run, *args: str, log_dir: Path) -> tuple[Path, Result]:
    """Run ``train.py <args>`` with ``run`` (``cli`` or ``run_ddp``): the run folder it created, the run."""
    before = set(run_folders(log_dir))
    result = run(*args, log_dir=log_dir)
    (created,) = set(run_folders(log_dir)) - before
    return created, result


def last_value(run: Path, tag: str) -> float:
    return read_scalars(run)[tag][-1][1]


def load_module(path: Path) -> ImageClassifier:
    """The LightningModule of a checkpoint, rebuilt from its own hyperparameters, in eval mode."""
    checkpoint = load_checkpoint(path)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    module = ImageClassifier(**hparams)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()


@pytest.fixture(scope="module")
def log_dir(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained run's logs: evaluation runs add their folders here, not to ``trained_run``."""
    return Path(shutil.copytree(trained_run, tmp_path_factory.mktemp("evaluations") / "logs"))


@pytest.fixture(scope="module")
def training(log_dir: Path) -> dict:
    """What training recorded: its scalars, and the best checkpoint with the score it was chosen by."""
    (run,) = checkpointed_runs(log_dir)
    best = best_checkpoint(run)
    return {
        "scalars": read_scalars(run),
        "last": run / "checkpoints" / "last.ckpt",
        "best": best,
        "best_epoch": load_checkpoint(best)["epoch"],
    }


@pytest.fixture(scope="module")
def test_split() -> tuple[torch.Tensor, torch.Tensor]:
    """The test split of the configured data, in order, as train.py test and predict see it."""
    batches = list(make_datamodule().test_dataloader())
    return torch.cat([images for images, _ in batches]), torch.cat([labels for _, labels in batches])


def test_validate_best_reproduces_the_metrics_logged_when_it_was_saved(cli, log_dir, training):
    logged = training["scalars"]
    # One validation per epoch; the checkpoint's epoch picks the values logged right before it was saved.
    assert len(logged["val/loss"]) == load_checkpoint(training["last"])["epoch"] + 1
    loss, acc = (logged[tag][training["best_epoch"]][1] for tag in ("val/loss", "val/acc"))
    # The best checkpoint is the epoch of lowest validation loss (with EarlyStopping, not necessarily the
    # last one).
    assert loss == min(value for _, value in logged["val/loss"])

    run, result = evaluate(cli, "validate", "--ckpt_path=best", log_dir=log_dir)
    assert "val/acc" in result.stdout and "Validate metric" in result.stdout  # the printed table
    assert last_value(run, "val/loss") == pytest.approx(loss, rel=1e-6)
    assert last_value(run, "val/acc") == pytest.approx(acc, abs=1e-6)


def test_test_metrics_equal_a_direct_evaluation_of_the_checkpoint(cli, log_dir, training, test_split):
    run, result = evaluate(cli, "test", "--ckpt_path=best", log_dir=log_dir)
    assert "test/acc" in result.stdout and "Test metric" in result.stdout
    module = load_module(training["best"])
    images, labels = test_split
    with torch.no_grad():
        logits = module(images)
        loss = module.loss(logits, labels).item()
    assert last_value(run, "test/loss") == pytest.approx(loss, rel=1e-5)
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    assert last_value(run, "test/acc") == pytest.approx(accuracy, abs=1e-6)
    chance = 1 / len(module.hparams.class_names)
    assert accuracy >= min(0.8, 2 * chance)  # trained, so the equality above is not between two chance levels


def read_predictions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_predict_writes_one_row_per_test_sample(cli, log_dir, training, test_split):
    run, result = evaluate(cli, "predict", "--ckpt_path=best", log_dir=log_dir)
    path = run / "predictions.csv"
    images, labels = test_split
    lines = (result.stdout + result.stderr).splitlines()
    assert f"Wrote {len(labels)} predictions to {path}" in lines  # on a line of its own
    rows = read_predictions(path)
    class_names = list(make_datamodule().class_names)
    assert list(rows[0]) == ["index", "prediction", *(f"prob_{name}" for name in class_names)]
    assert [int(row["index"]) for row in rows] == list(range(len(labels)))
    probabilities = torch.tensor([[float(row[f"prob_{name}"]) for name in class_names] for row in rows])
    assert torch.allclose(probabilities.sum(1), torch.ones(len(rows)), atol=1e-4)
    predicted = torch.tensor([class_names.index(row["prediction"]) for row in rows])
    assert torch.equal(predicted, probabilities.argmax(1))
    with torch.no_grad():
        expected = load_module(training["best"])(images).softmax(1)
    assert torch.allclose(probabilities, expected, atol=1e-5)


def test_merging_shares_keeps_each_sample_once():
    # Two processes, five samples: a padding sampler gives the second process sample 0 again.
    shares = [(torch.tensor([0, 2, 4]), torch.eye(3)), (torch.tensor([1, 3, 0]), torch.eye(3) * 2)]
    indices, probabilities = merge(shares, num_samples=5)
    assert indices.tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(probabilities[0], torch.eye(3)[0])  # the first occurrence wins
    with pytest.raises(RuntimeError, match="cover 5 distinct samples of 6"):
        merge(shares, num_samples=6)


@pytest.mark.slow
def test_predict_under_ddp_writes_every_sample_once(log_dir, training, test_split):
    ddp = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]
    run, result = evaluate(run_ddp, "predict", "--ckpt_path=best", *ddp, log_dir=log_dir)
    images, _ = test_split
    assert (result.stdout + result.stderr).count(f"Wrote {len(images)} predictions") == 1
    rows = read_predictions(run / "predictions.csv")
    assert [int(row["index"]) for row in rows] == list(range(len(images)))

    # Every row holds the prediction for the sample its index names, whichever process computed it.
    module = load_module(training["best"])
    with torch.no_grad():
        expected = module(images).softmax(1)
    class_names = module.hparams.class_names
    written = torch.tensor([[float(row[f"prob_{name}"]) for name in class_names] for row in rows])
    assert torch.allclose(written, expected, atol=1e-5)
