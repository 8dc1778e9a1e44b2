"""Real, short training runs through ``train.py``, the entry point users run."""

import json
from pathlib import Path

import probes
import pytest
import yaml
from conftest import CONFIG, MODE, MONITOR, PROJECT_ROOT, better, checkpointed_runs, load_checkpoint
from metrics import RESUME_CONTINUES_RUN, read_scalars

from {{ cookiecutter.package_name }}.infra.faults import early_stopping


def only_run(log_dir: Path) -> Path:
    runs = checkpointed_runs(log_dir)
    assert len(runs) == 1, runs
    return runs[0]


def test_fit_learns_and_writes_checkpoints_and_logs(trained_run):
    run = only_run(trained_run)
    losses = json.loads((trained_run / "losses.json").read_text())
    first, last = ([step["loss"] for step in losses if step["epoch"] == epoch] for epoch in (0, 3))
    assert sum(last) / len(last) < sum(first) / len(first), "the training loss did not fall"
    monitored = [value for _, value in read_scalars(run)[MONITOR]]
    assert len(monitored) == 4, f"{MONITOR} is logged once per validation"
    # The best checkpoint is the epoch whose monitored value is best.
    best_epoch = monitored.index(min(monitored) if MODE == "min" else max(monitored))
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    assert load_checkpoint(best)["epoch"] == best_epoch
    assert any(better(value, monitored[0]) for value in monitored[1:]), f"{MONITOR} never improved"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "config.yaml").is_file(), "the resolved config of the run was not saved in its folder"


@pytest.mark.slow
def test_resume_from_last_continues_the_same_run(cli, tmp_path):
    cli("fit", "--trainer.max_epochs=2", log_dir=tmp_path)
    run = only_run(tmp_path)
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] == 1

    result = cli("fit", "--ckpt_path=last", "--trainer.max_epochs=4", log_dir=tmp_path)
    assert "Restored all states" in result.stdout + result.stderr
    if RESUME_CONTINUES_RUN:
        assert only_run(tmp_path) == run
    else:
        run = checkpointed_runs(tmp_path)[-1]
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["epoch"] == 3
    val_steps = [step for step, _ in read_scalars(run)[MONITOR]]
    assert len(val_steps) == len(set(val_steps)) == (4 if RESUME_CONTINUES_RUN else 2)
    # The resume is the run's second attempt, recorded beside the first (which a new run folder copies).
    first, second = json.loads((run / "provenance.json").read_text())["attempts"]
    assert [attempt["attempt"] for attempt in (first, second)] == [1, 2]
    assert [attempt["outcome"] for attempt in (first, second)] == ["completed", "completed"]
    assert first["ended"] <= second["started"] and first["checkpoint"] is None
    resumed_from = second["checkpoint"]
    assert (resumed_from["epoch"], Path(resumed_from["path"]).name) == (1, "last.ckpt")
    assert resumed_from["provenance"]["attempt"] == 1 and resumed_from["provenance"]["run"] == first["run"]
    assert (first["epochs_completed"], second["epochs_completed"]) == (2, 4)
    assert checkpoint["record"]["provenance"]["attempt"] == 2


def test_a_run_that_early_stopping_ended_trains_on_when_resumed(monkeypatch):
    said = []
    monkeypatch.setattr(early_stopping, "rank_zero_info", said.append)
    stopper = early_stopping.ResumableEarlyStopping(monitor="val/loss", patience=5)
    finished = {**stopper.state_dict(), "wait_count": 3, "patience": 3, "best_score": 0.5, "stopped_epoch": 9}
    stopper.load_state_dict(finished)
    assert (stopper.wait_count, stopper.stopped_epoch, stopper.patience) == (0, 0, 5)
    assert float(stopper.best_score) == 0.5
    assert len(said) == 1 and said[0].startswith("early stopping had ended this run")
    # A run interrupted before it was stopped resumes its count as it was.
    stopper.load_state_dict({**finished, "wait_count": 2})
    assert stopper.wait_count == 2


@pytest.mark.parametrize("which", ["last", "best"])
def test_resume_without_a_checkpoint_says_so(cli, tmp_path, which):
    result = cli("fit", f"--ckpt_path={which}", log_dir=tmp_path, check=False)
    assert result.returncode != 0
    said = result.stderr.strip().splitlines()[-1]
    assert said.startswith(f"error: --ckpt_path {which}: no run with checkpoints in {tmp_path}"), said
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_resumed_run_with_a_new_length_follows_its_new_schedule(cli, tmp_path):
    """Extended from 2 to 4 epochs, a run's learning rates are those of a run of 4 epochs from the start."""
    cli("fit", "--trainer.max_epochs=2", log_dir=tmp_path / "extended")
    cli("fit", "--ckpt_path=last", "--trainer.max_epochs=4", log_dir=tmp_path / "extended")
    cli("fit", "--trainer.max_epochs=4", log_dir=tmp_path / "whole")
    extended, whole = (read_scalars(checkpointed_runs(tmp_path / name)[-1]) for name in ("extended", "whole"))
    rates = [tag for tag in whole if tag.startswith("lr-")]
    if not rates:
        pytest.skip("no learning rate is logged (a LearningRateMonitor and a scheduler log one)")
    for tag in rates:
        # The resumed epochs, 2 and 3, by the schedule of 4 epochs (with the old one: 0, then rising).
        resumed, expected = ([value for _, value in scalars[tag]][-2:] for scalars in (extended, whole))
        assert resumed == pytest.approx(expected, rel=1e-6), tag


def test_a_logs_folder_whose_name_has_glob_characters_resumes(cli, tmp_path):
    logs = tmp_path / "logs [v1]*"
    cli("fit", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", log_dir=logs)
    cli("fit", "--ckpt_path=last", "--trainer.max_epochs=2", "--trainer.limit_train_batches=2", log_dir=logs)
    newest = max(checkpointed_runs(logs), key=lambda run: (run / "checkpoints" / "last.ckpt").stat().st_mtime)
    assert load_checkpoint(newest / "checkpoints" / "last.ckpt")["epoch"] == 1


def test_default_config_is_found_from_any_directory(cli, tmp_path):
    result = cli("fit", "--print_config", log_dir=tmp_path / "logs", cwd=tmp_path)
    assert f"class_path: {CONFIG['data']['class_path']}" in result.stdout
    assert f"class_path: {CONFIG['model']['class_path']}" in result.stdout
    assert f"monitor: {MONITOR}" in result.stdout


def test_output_to_a_file_is_one_line_per_epoch_and_no_srun_hint(cli, monkeypatch, on_path, tmp_path):
    # An `srun` on PATH, as on a cluster's login node, outside a SLURM job: Lightning's hint does not apply.
    on_path("srun")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    # The progress bar on, and the output captured: not a terminal.
    result = cli(
        "fit", "--trainer.max_epochs=3", "--trainer.enable_progress_bar=true", log_dir=tmp_path / "logs"
    )
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 0", "epoch 1", "epoch 2"]
    assert "\r" not in result.stdout + result.stderr, "no progress bar redraws in a file"
    assert "srun" not in result.stdout + result.stderr


def test_the_profiler_named_on_the_command_line_reports_every_callback(cli, tmp_path):
    result = cli(
        "fit",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
        "--trainer.profiler=simple",
        "--trainer.enable_progress_bar=true",  # a callback too
        log_dir=tmp_path,
    )
    report = result.stdout + result.stderr
    assert "FIT Profiler Report" in report
    for callback in CONFIG["trainer"]["callbacks"]:
        name = callback["class_path"].rsplit(".", 1)[-1]
        assert f"[Callback]{name}" in report, f"{name} is missing from the profiler's report"


@pytest.mark.parametrize("every_seconds", [None, 0])
def test_last_ckpt_is_written_after_the_first_and_last_epochs_or_every_one(cli, tmp_path, every_seconds):
    """Short epochs: last.ckpt after the first epoch, the last, and once a minute (default) in between."""
    saves = tmp_path / "saves.jsonl"
    options = [
        "--trainer.max_epochs=4",
        "--trainer.limit_train_batches=2",
        *probes.option("RecordSaves", path=saves),
    ]
    if every_seconds is not None:  # the config's LastCheckpoint, given every_seconds 0
        config = tmp_path / "every-epoch.yaml"
        callbacks = yaml.safe_load((PROJECT_ROOT / "configs" / "config.yaml").read_text())["trainer"][
            "callbacks"
        ]
        for callback in callbacks:
            if callback["class_path"].endswith(".LastCheckpoint"):
                callback["init_args"]["every_seconds"] = every_seconds
        config.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}))
        options.append(f"--config={config}")
    cli("fit", *options, log_dir=tmp_path / "logs")
    written = [json.loads(line) for line in saves.read_text().splitlines()]
    last = [save["epoch"] for save in written if save["name"] == "last.ckpt"]
    assert last == ([0, 3] if every_seconds is None else [0, 1, 2, 3]), written
