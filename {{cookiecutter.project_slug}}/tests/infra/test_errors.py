"""User mistakes get one clear line and a non-zero exit, and write nothing: through ``train.py``."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import probes
import pytest
import torch
from conftest import Result, configured_class, load_checkpoint, make_datamodule, make_model

from {{ cookiecutter.package_name }}.infra.command.checks import check_weights_fit, read_checkpoint
from {{ cookiecutter.package_name }}.infra.command.record import RECORD


def snapshot(log_dir: Path) -> dict[str, str]:
    """Every file under ``log_dir`` with a hash of its content: any new run or rewritten file shows."""
    return {
        str(path.relative_to(log_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(log_dir.rglob("*"))
        if path.is_file()
    }


def assert_refused(result: Result, message: str) -> None:
    """Failed, said ``message`` on its last lines, and printed no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert message in "\n".join(result.stderr.splitlines()[-4:]), result.stderr


@pytest.fixture
def logs(trained_run: Path, tmp_path: Path) -> Path:
    """A private copy of a trained run, so a test can check that nothing in it changes."""
    return Path(shutil.copytree(trained_run, tmp_path / "logs"))


@pytest.fixture
def last_checkpoint(logs: Path) -> Path:
    return next(logs.glob("**/checkpoints/last.ckpt"))


def test_unknown_option_is_named(cli, tmp_path):
    result = cli("fit", "--trainer.max_epohcs=3", log_dir=tmp_path, check=False)
    assert_refused(result, "error: unrecognized arguments: --trainer.max_epohcs")
    # One usage line, not every option of the Trainer.
    assert len(result.stderr.splitlines()) <= 4, result.stderr
    assert not any(tmp_path.iterdir())


def test_misspelled_or_mistyped_key_in_a_config_file_is_named(cli, tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("trainer:\n  max_epohcs: 3\n", encoding="utf-8")
    result = cli("fit", f"--config={config}", log_dir=tmp_path / "logs", check=False)
    assert_refused(result, "does not accept option 'trainer.max_epohcs'")

    config.write_text("trainer:\n  max_epochs: fast\n", encoding="utf-8")
    result = cli("fit", f"--config={config}", log_dir=tmp_path / "logs", check=False)
    assert_refused(result, "fast")
    assert 'Parser key "trainer.max_epochs"' in result.stderr

    config.write_text("model:\n  init_args:\n    no_such_argument: 3\n", encoding="utf-8")
    result = cli("fit", f"--config={config}", log_dir=tmp_path / "logs", check=False)
    assert_refused(result, "no_such_argument")
    assert not (tmp_path / "logs").exists()


def test_missing_config_file_is_named(cli, tmp_path):
    result = cli("fit", f"--config={tmp_path / 'missing.yaml'}", log_dir=tmp_path, check=False)
    assert_refused(result, "File does not exist")
    assert "missing.yaml" in result.stderr
    assert not any(tmp_path.iterdir())


def test_a_url_as_run_folder_is_refused_and_nothing_is_written(cli, tmp_path):
    url = "s3://bucket/runs"
    result = cli(
        "fit", f"--trainer.logger.init_args.save_dir={url}", log_dir=tmp_path, cwd=tmp_path, check=False
    )
    assert_refused(result, f"error: logger save_dir {url}: runs are written to a local or shared filesystem")
    assert not any(tmp_path.iterdir())  # no local folder named "s3:"


def test_missing_checkpoint_is_named_and_nothing_is_written(cli, logs):
    before = snapshot(logs)
    result = cli("test", "--ckpt_path=no/such.ckpt", log_dir=logs, check=False)
    assert_refused(result, "error: --ckpt_path no/such.ckpt: no such file")
    assert snapshot(logs) == before


def test_truncated_checkpoint_is_refused_and_nothing_is_written(cli, logs, last_checkpoint, tmp_path):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(last_checkpoint.read_bytes()[:4096])
    before = snapshot(logs)
    result = cli("fit", f"--ckpt_path={truncated}", log_dir=logs, check=False)
    assert_refused(result, "not a PyTorch checkpoint (truncated, or another kind of file)")
    assert snapshot(logs) == before


def test_checkpoint_of_another_model_is_refused_and_nothing_is_written(cli, logs, last_checkpoint, tmp_path):
    checkpoint = load_checkpoint(last_checkpoint)
    checkpoint["state_dict"] = {f"backbone.{k}": v for k, v in checkpoint["state_dict"].items()}
    other = tmp_path / "other.ckpt"
    torch.save(checkpoint, other)
    before = snapshot(logs)
    result = cli("fit", f"--ckpt_path={other}", log_dir=logs, check=False)
    assert_refused(result, f"its weights do not fit {configured_class('model').__name__}")
    assert re.search(r"\d+ missing \(e\.g\. ", result.stderr)
    assert re.search(r"\d+ unexpected \(e\.g\. backbone\.", result.stderr)
    assert snapshot(logs) == before


def test_a_checkpoint_trained_on_other_data_is_refused_and_nothing_is_written(
    cli, logs, last_checkpoint, tmp_path
):
    checkpoint = load_checkpoint(last_checkpoint)
    given = checkpoint[RECORD]["data_args"]
    if not given:
        pytest.skip(f"{configured_class('data').__name__} gives the model nothing (no model_args())")
    key = next(iter(given))
    checkpoint[RECORD]["data_args"][key] = ["something", "else"]
    other = tmp_path / "other-data.ckpt"
    torch.save(checkpoint, other)
    before = snapshot(logs)
    for subcommand in ("validate", "test", "predict", "fit"):
        result = cli(subcommand, f"--ckpt_path={other}", log_dir=logs, check=False)
        said = f'--ckpt_path {other} was trained with {key} = ["something", "else"], but the data'
        assert_refused(result, said)
    assert snapshot(logs) == before


def test_diverging_loss_stops_training_and_names_the_step(cli, tmp_path):
    nan_at_step_2 = probes.option("NanAt", step=2, rank=0)
    result = cli("fit", "--trainer.max_epochs=2", *nan_at_step_2, log_dir=tmp_path, check=False)
    assert_refused(result, "error: the training loss is nan at step 2 (epoch 0)")
    # Stopped inside the first epoch: no checkpoint of diverged weights was written.
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a PyTorch checkpoint"),
        (b"model:\n  lr: 0.1\n", "not a PyTorch checkpoint"),
        (None, "not a Lightning checkpoint"),
    ],
)
def test_files_that_are_not_checkpoints_are_named(tmp_path, content, message):
    path = tmp_path / "file.ckpt"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(SystemExit, match=re.escape(message)):
        read_checkpoint(path, weights_only=None)


def test_weights_of_another_shape_are_named(last_checkpoint):
    weights = read_checkpoint(last_checkpoint, weights_only=None)["state_dict"]
    name = next(key for key, value in weights.items() if value.dim() >= 1)
    resized = {**weights, name: torch.zeros(weights[name].shape[0] + 1, *weights[name].shape[1:])}
    model = make_model(make_datamodule())
    with pytest.raises(SystemExit, match=rf"of another shape \(e\.g\. {re.escape(name)}\)"):
        check_weights_fit(model, resized, str(last_checkpoint))
    check_weights_fit(model, weights, str(last_checkpoint))


def test_best_is_found_when_last_cannot_be_read(cli, logs, last_checkpoint, tmp_path):
    best = next(path for path in last_checkpoint.parent.glob("*.ckpt") if path != last_checkpoint)
    last_checkpoint.write_bytes(last_checkpoint.read_bytes()[:4096])  # a copy cut short
    result = cli("test", "--ckpt_path=best", log_dir=logs)
    assert f"the best is {best.name}, the one other there" in result.stderr
    assert f"Restoring states from the checkpoint path at {best}" in result.stdout + result.stderr
    # With two candidates, nothing says which is the best: one line asks to name it.
    shutil.copy(best, best.with_name("other.ckpt"))
    result = cli("test", "--ckpt_path=best", log_dir=logs, check=False)
    assert_refused(result, f"error: --ckpt_path best: {last_checkpoint}, which records the best checkpoint,")
    assert "give one with --ckpt_path" in result.stderr


def test_hyperparameters_that_do_not_fit_the_model_are_named(cli, logs, last_checkpoint, tmp_path):
    checkpoint = load_checkpoint(last_checkpoint)
    checkpoint["hyper_parameters"]["no_such_argument"] = 3
    torch.save(checkpoint, other := tmp_path / "other-version.ckpt")
    before = snapshot(logs)
    result = cli("test", f"--ckpt_path={other}", log_dir=logs, check=False)
    assert_refused(result, f"error: --ckpt_path {other}: its hyperparameters do not fit")
    assert "no_such_argument" in result.stderr.strip().splitlines()[-1]
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(logs) == before


def test_a_run_folder_that_cannot_be_made_is_named(cli, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    result = cli("fit", log_dir=tmp_path / "a-file" / "logs", check=False)
    assert_refused(result, "error: cannot write run folders in")
    assert "trainer.logger.init_args.save_dir" in result.stderr
