"""From checkpoint to numbers: validate and predict through train.py agree with training and with the module.

The validation metrics logged during training are the only evaluation "logged at the end of training": the
best checkpoint was chosen by them. Predictions are checked against the module's own ``predict_step``.
"""

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import (
    MODE,
    MONITOR,
    Result,
    best_checkpoint,
    checkpointed_runs,
    load_checkpoint,
    load_module,
    make_datamodule,
    run_folders,
)
from ddp import run_ddp
from metrics import read_scalars

from {{ cookiecutter.package_name }}.infra.outputs.batches import as_the_model_sees_it, split_batch
from {{ cookiecutter.package_name }}.infra.outputs.predictions import batch_columns, concatenate, merge


def evaluate(run, *args: str, log_dir: Path) -> tuple[Path, Result]:
    """Run ``train.py <args>`` with ``run`` (``cli`` or ``run_ddp``): the run folder it created, the run."""
    before = set(run_folders(log_dir))
    result = run(*args, log_dir=log_dir)
    (created,) = set(run_folders(log_dir)) - before
    return created, result


@pytest.fixture(scope="module")
def log_dir(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained run's logs: evaluation runs add their folders here, not to ``trained_run``."""
    return Path(shutil.copytree(trained_run, tmp_path_factory.mktemp("evaluations") / "logs"))


@pytest.fixture(scope="module")
def training(log_dir: Path) -> dict:
    """What training recorded: its scalars, and the best checkpoint with the epoch it was saved at."""
    (run,) = checkpointed_runs(log_dir)
    best = best_checkpoint(run)
    return {"scalars": read_scalars(run), "best": best, "best_epoch": load_checkpoint(best)["epoch"]}


def test_validate_best_reproduces_the_metric_logged_when_it_was_saved(cli, log_dir, training):
    logged = [value for _, value in training["scalars"][MONITOR]]
    # The best checkpoint is the epoch of the best monitored value (with early stopping, not always the last).
    assert logged[training["best_epoch"]] == (min(logged) if MODE == "min" else max(logged))
    run, result = evaluate(cli, "validate", "--ckpt_path=best", log_dir=log_dir)
    assert MONITOR in result.stdout and "Validate metric" in result.stdout  # the printed table
    assert read_scalars(run)[MONITOR][-1][1] == pytest.approx(logged[training["best_epoch"]], rel=1e-5)
    # The evaluation's run records the checkpoint it evaluated, and where that came from.
    (attempt,) = json.loads((run / "provenance.json").read_text())["attempts"]
    assert attempt["subcommand"] == "validate"
    assert attempt["checkpoint"] == origin(log_dir, training["best"].name)


def direct_predictions(checkpoint: Path) -> dict[str, list]:
    """What the checkpoint's module's own ``predict_step`` gives over the predict loader, as CSV columns."""
    module = load_module(checkpoint)
    datamodule = make_datamodule()
    datamodule.setup("predict")
    with torch.no_grad():
        return concatenate(
            [
                batch_columns(module.predict_step(batch, index), split_batch(module, batch)[1])
                for index, batch in enumerate(
                    as_the_model_sees_it(raw, module, datamodule) for raw in datamodule.predict_dataloader()
                )
            ]
        )


def read_predictions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def assert_rows_match(rows: list[dict[str, str]], expected: dict[str, list]) -> None:
    """Every column of ``expected`` is in the file with the same values, numbers to 5 significant digits."""
    assert [int(row["index"]) for row in rows] == list(range(len(rows)))
    for name, values in expected.items():
        written = [row[name] for row in rows]
        if all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
            pairs = zip(written, values, strict=True)
            assert all(math.isclose(float(w), v, rel_tol=1e-5, abs_tol=1e-6) for w, v in pairs), name
        else:
            assert written == [str(value) for value in values], name


def test_predict_writes_one_row_per_sample_with_what_predict_step_returns(cli, log_dir, training):
    run, result = evaluate(cli, "predict", "--ckpt_path=best", log_dir=log_dir)
    path = run / "predictions.csv"
    expected = direct_predictions(training["best"])
    rows = read_predictions(path)
    lines = (result.stdout + result.stderr).splitlines()
    assert f"Wrote {len(rows)} predictions to {path}" in lines  # on a line of its own
    datamodule = make_datamodule()
    datamodule.setup("predict")
    dataset = datamodule.predict_dataloader().dataset
    assert len(rows) == len(dataset)
    ids = getattr(dataset, "sample_ids", None)
    assert list(rows[0]) == ["index", *(["id"] if ids is not None else []), *expected]
    if ids is not None:
        assert [row["id"] for row in rows] == [str(sample) for sample in ids]
    assert_rows_match(rows, expected)
    # Beside them, what they are and where they come from: the run, and the checkpoint with its origin.
    about = json.loads(path.with_suffix(".json").read_text())
    assert (about["file"], about["rows"], about["columns"]) == (path.name, len(rows), list(rows[0]))
    assert about["run"] == str(run.resolve())
    assert about["checkpoint"] == origin(log_dir, training["best"].name)


def origin(log_dir: Path, name: str) -> dict:
    """How a run that used checkpoint ``name`` of the trained run in ``log_dir`` names it: its file, epoch,
    step, and the summary of the run that trained it (the trained run was copied here: its original folder).
    """
    (trained,) = checkpointed_runs(log_dir)
    checkpoint = trained / "checkpoints" / name
    state = load_checkpoint(checkpoint)
    assert state["record"]["provenance"]["attempt"] == 1
    return {
        "path": str(checkpoint.resolve()),
        "epoch": state["epoch"],
        "global_step": state["global_step"],
        "provenance": state["record"]["provenance"],
    }


def test_merging_shares_keeps_each_sample_once():
    # Two processes, five samples: a padding sampler gives the second process sample 0 again.
    shares = [([0, 2, 4], {"p": [0.0, 2.0, 4.0]}), ([1, 3, 0], {"p": [1.0, 3.0, 9.0]})]
    order, columns = merge(shares, num_samples=5)
    assert order == [0, 1, 2, 3, 4] and columns == {"p": [0.0, 1.0, 2.0, 3.0, 4.0]}  # the first of duplicates
    with pytest.raises(RuntimeError, match="cover 5 distinct samples of 6"):
        merge(shares, num_samples=6)


def test_any_output_becomes_columns():
    output = {"score": torch.tensor([[1, 2], [3, 4]]), "label": ["a", "b"]}
    columns = batch_columns(output, torch.tensor([5, 6]))
    assert columns == {"target": [5, 6], "score_0": [1, 3], "score_1": [2, 4], "label": ["a", "b"]}
    zeros = [0.0, 0.0]
    assert batch_columns(torch.zeros(2, 1, 2), None) == {"prediction_0": zeros, "prediction_1": zeros}
    assert batch_columns(torch.zeros(2, 1), torch.ones(2, 1)) == {"target": [1.0, 1.0], "prediction": zeros}


@pytest.mark.slow
def test_predict_under_ddp_writes_every_sample_once(log_dir, training):
    ddp = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]
    run, result = evaluate(run_ddp, "predict", "--ckpt_path=best", *ddp, log_dir=log_dir)
    rows = read_predictions(run / "predictions.csv")
    assert (result.stdout + result.stderr).count(f"Wrote {len(rows)} predictions") == 1
    # Every row holds the prediction for the sample its index names, whichever process computed it.
    assert_rows_match(rows, direct_predictions(training["best"]))
