"""``sweep.py``: trials are ordinary runs, the best config reproduces, the study survives kills and workers.

Trials run in this process wherever a separate one proves nothing; kills and parallel workers need real
processes. The metric, its direction and the search space come from ``configs/sweep.yaml``.
"""

from __future__ import annotations

import math
import re
import shlex
import signal
import sys
import time
from pathlib import Path

import probes
import pytest
import yaml
from conftest import CONFIG, PROJECT_ROOT, checkpointed_runs, logged_steps, run_in_process
from metrics import read_scalars
from sweeps import (
    KEY,
    SWEEP,
    TINY,
    assert_trials_each_once,
    best_value,
    readme_commands,
    records,
    start_sweep,
    started,
    study,
    sweep_args,
    sweep_config,
    trial_lines,
)

from {{ cookiecutter.package_name }}.infra.command.cli import one_of_several_runs
from {{ cookiecutter.package_name }}.infra.sweeps.sweep import STOPPED_HINT
from {{ cookiecutter.package_name }}.infra.sweeps.sweep import main as sweep_main


@pytest.fixture
def sweep(capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """``sweep(*args, log_dir=...)``: ``python sweep.py <args>`` in this process; (status, stdout, stderr)."""

    def run(*args: str, log_dir: Path) -> tuple[int, str, str]:
        monkeypatch.chdir(PROJECT_ROOT)
        monkeypatch.setattr(sys, "argv", [str(PROJECT_ROOT / "sweep.py")])
        capfd.readouterr()
        try:
            with one_of_several_runs():
                sweep_main(sweep_args(log_dir, *args))
            status = 0
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
            if isinstance(exit.code, str):
                print(exit.code, file=sys.stderr)
        out, err = capfd.readouterr()
        return status, out, err

    return run


@pytest.mark.slow
def test_trials_are_runs_and_the_best_config_reproduces(sweep, cli, tmp_path):
    status, out, err = sweep("--trials=6", log_dir=tmp_path)
    assert status == 0, err
    journal = tmp_path / f"{SWEEP['name']}.journal"
    assert out.splitlines()[0] == f"study {SWEEP['name']} in {journal}: 0 trials done, 6 wanted"
    lines = trial_lines(out)
    assert sorted(lines) == list(range(6)) and "Warning" not in err, out + err
    finished = records(tmp_path)
    assert len(finished) == 6 and len({record["run"] for record in finished}) == 6
    # Runs of one experiment, so that the logger's views show the trials side by side.
    assert len({record["run"].parent for record in finished}) == 1
    for record in finished:
        assert (record["run"] / "config.yaml").is_file() and set(record["params"]) == set(SWEEP["params"])
    best = study(tmp_path).best_trial
    assert f"\n{best.number} " in out  # the table of the best trials
    run = Path(best.user_attrs["run"])
    assert math.isclose(best_value(read_scalars(run), SWEEP["metric"]), best.value, rel_tol=1e-6)

    # An ordinary run: its checkpoints evaluate with train.py, and the best config trains it again.
    (checkpoint,) = (run / "checkpoints").glob("best-*.ckpt")
    cli("test", f"--ckpt_path={checkpoint}", *TINY[1:], log_dir=tmp_path / "test")
    config = tmp_path / f"{SWEEP['name']}-best.yaml"
    # The hardware is the project's, not that of the one device each trial ran on.
    best_config = yaml.safe_load(config.read_text())
    for key in ("accelerator", "devices", "strategy", "num_nodes", "precision"):
        assert best_config["trainer"][key] == CONFIG["trainer"][key], key
    again = tmp_path / "again"
    options = [f"--config={config}", f"--trainer.logger.init_args.save_dir={again}"]
    assert run_in_process(["fit", *options, "--trainer.enable_progress_bar=false"]) == 0
    (again,) = checkpointed_runs(again)
    assert math.isclose(best_value(read_scalars(again), SWEEP["metric"]), best.value, rel_tol=1e-6)


@pytest.mark.slow
def test_an_aggressive_pruner_prunes_and_the_pruned_trial_keeps_its_run(sweep, tmp_path):
    bound = {"lower": math.inf} if SWEEP["direction"] == "maximize" else {"upper": -math.inf}
    pruner = {"class_path": "optuna.pruners.ThresholdPruner", "init_args": bound}
    config = sweep_config(tmp_path, pruner=pruner)
    status, out, err = sweep(f"--sweep={config}", "--trials=2", log_dir=tmp_path)
    assert status == 0, err
    assert set(trial_lines(out).values()) == {"PRUNED"}, out
    for record in records(tmp_path):
        assert record["state"] == "PRUNED" and "pruned after epoch 0" in record["stopped"]
        assert (record["run"] / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"params": {"model.no_such_key": {"low": 0.1, "high": 0.2}}}, "model.no_such_key: not a key"),
        ({"params": {KEY: {"low": 0.1, "high": 0.1}}}, f"{KEY}: empty range"),
        ({"params": {KEY: {"choices": []}}}, f"{KEY}: choices is empty"),
        ({"metric": "val/no_such_metric"}, "metric val/no_such_metric is never logged"),
    ],
    ids=["unknown key", "empty range", "no choices", "metric never logged"],
)
def test_bad_input_is_one_line(sweep, tmp_path, change, error):
    status, out, err = sweep(f"--sweep={sweep_config(tmp_path, **change)}", "--trials=1", log_dir=tmp_path)
    assert status == 1
    assert err.strip().splitlines()[-1].startswith("error: ") and error in err, err
    assert not records(tmp_path)


# The sweeps continued or run alongside are in this process: a process of their own would prove nothing more.
@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])  # a machine gone; a kill or preemption
def test_a_sweep_stopped_in_its_last_trial_resumes_it_and_ends_at_the_requested_count(
    sweep, recwarn, tmp_path, stop
):
    epochs = "--trainer.max_epochs=4"
    status, first, err = sweep("--trials=2", epochs, log_dir=tmp_path)
    assert status == 0, err
    # The next trial, the last one asked for, is stopped in its third epoch, past its first checkpoints. A
    # stop signal is acted on at the next batch, or when the last epoch starts if that was the epoch's last
    # batch.
    stopped_at = probes.option("KillAt", hook="train", epoch=2, batch=0, signal=stop)
    worker = start_sweep(tmp_path, "--trials=3", epochs, *stopped_at)
    out, stopped_err = worker.communicate(timeout=1200)
    first += out
    if stop == "SIGTERM":  # the trial saved where it was, and the worker queued it again on its way out
        assert worker.returncode == 128 + signal.SIGTERM, stopped_err
        assert f"stopped by SIGTERM: {STOPPED_HINT}" in stopped_err.splitlines()
    status, second, err = sweep("--trials=3", epochs, log_dir=tmp_path)
    assert status == 0, err
    assert not set(trial_lines(first)) & set(trial_lines(second))
    assert_trials_each_once(tmp_path, 3)
    trials = study(tmp_path).trials
    (rerun,) = [trial for trial in trials if "rerun_of" in trial.user_attrs]
    stopped = trials[rerun.user_attrs["rerun_of"]]
    assert rerun.params == stopped.params
    interrupted = re.findall(r"^trial (\d+) was interrupted: running it again$", second, re.M)
    assert interrupted == ([str(stopped.number)] if stop == "SIGKILL" else []), second
    # It resumed the stopped trial's last checkpoint (past its first epoch), in a run of its own: it trained
    # only what was left, and reports the epochs before as the stopped trial did.
    assert f"trial {rerun.number} resumes trial {stopped.number} from " in second
    steps = logged_steps(read_scalars(Path(rerun.user_attrs["run"])))
    assert steps[0] > 0
    assert rerun.intermediate_values[0] == stopped.intermediate_values[0]
    assert not [str(w.message) for w in recwarn if "optuna" in w.filename]  # e.g. an epoch reported twice


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])  # a kill or preemption; SLURM's time limit near
@pytest.mark.filterwarnings("ignore:The `srun` command is available")  # Lightning's, in a pretend SLURM job
def test_a_stop_signal_after_a_trials_last_batch_stops_the_sweep_before_the_next_trial(
    sweep, tmp_path, monkeypatch, scontrol, name
):
    if name == "SIGUSR1":
        monkeypatch.setenv("SLURM_JOB_ID", "123")
    # During the last validation: too late for the trial to stop, so it ends and counts; the sweep stops.
    late = probes.option("KillAt", hook="validation", epoch=1, batch=0, signal=name)
    status, out, err = sweep("--trials=3", "--trainer.max_epochs=2", *late, log_dir=tmp_path)
    assert status == 128 + signal.Signals[name], err
    if name == "SIGUSR1":  # the job goes back in the queue, and its next attempt continues the sweep
        assert "stopped by SIGUSR1: requeued" in err.splitlines()
        assert scontrol.read_text().split() == ["requeue", "123"]
    else:
        assert f"stopped by SIGTERM: {STOPPED_HINT}" in err.splitlines() and not scontrol.exists()
    assert list(trial_lines(out)) == [0], out
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    status, out, err = sweep("--trials=3", "--trainer.max_epochs=2", log_dir=tmp_path)
    assert status == 0, err
    assert sorted(trial_lines(out)) == [1, 2], out


@pytest.mark.slow
def test_two_workers_share_one_study(sweep, tmp_path):
    # Trials of 20 epochs: this worker starts well before the other could run them all.
    other = start_sweep(tmp_path, "--trials=6", "--trainer.max_epochs=20")
    deadline = time.monotonic() + 600
    while not started(tmp_path):
        assert other.poll() is None and time.monotonic() < deadline, other.communicate()
        time.sleep(0.05)  # the other worker runs its first trial: this one starts with the second
    status, out, err = sweep("--trials=6", log_dir=tmp_path)
    others_out, others_err = other.communicate(timeout=1200)
    assert (status, other.returncode) == (0, 0), err + others_err
    numbers = [set(trial_lines(out)), set(trial_lines(others_out))]
    assert numbers[0] and numbers[1] and not numbers[0] & numbers[1], out + others_out
    assert_trials_each_once(tmp_path, 6)


@pytest.mark.slow
def test_the_readme_commands_run(sweep, cli, tmp_path):
    commands = readme_commands()
    assert any(command.startswith("python sweep.py") for command in commands)
    for command in commands:
        words = [word.replace("logs/", f"{tmp_path}/") for word in shlex.split(command)]
        if words[:2] == ["python", "sweep.py"] and "&" not in words:
            status, _, err = sweep(*words[2:], "--trials=2", log_dir=tmp_path)
            assert status == 0, f"{command}: {err}"
        elif words[:2] == ["python", "train.py"]:
            args = words[2:] if words[2:3] and not words[2].startswith("-") else ["fit", *words[2:]]
            cli(*args, *TINY, log_dir=tmp_path / "train")


def one_trial(sweep, log_dir: Path, *args: str) -> tuple[int, str, str]:
    return sweep("--trials=1", "--trainer.max_epochs=1", *args, log_dir=log_dir)


@pytest.mark.slow
@pytest.mark.parametrize("change", ["range", "metric"])
def test_a_study_refuses_another_search_in_one_line(sweep, tmp_path, change):
    status, _, err = one_trial(sweep, tmp_path)
    assert status == 0, err
    spec = SWEEP["params"][KEY]
    if change == "range":
        moved = {**spec, "high": spec["high"] * 2} if "high" in spec else {"choices": spec["choices"][:1]}
        other, said = sweep_config(tmp_path, params={**SWEEP["params"], KEY: moved}), KEY
    else:
        other, said = sweep_config(tmp_path, metric="val/other"), "metric"
    status, out, err = sweep(f"--sweep={other}", "--trials=2", log_dir=tmp_path)
    last = err.strip().splitlines()[-1]
    assert status == 1 and last.startswith(f"error: study {SWEEP['name']} was started with {said} "), err
    assert f"and {other} now has {said} " in last and "--name" in last
    assert len(study(tmp_path).trials) == 1, "no trial of the other search was run"


@pytest.mark.slow
def test_a_new_study_never_uses_an_old_studys_trial_folders(sweep, tmp_path):
    status, _, err = one_trial(sweep, tmp_path)
    assert status == 0, err
    (old,) = records(tmp_path)
    (tmp_path / f"{SWEEP['name']}.journal").unlink()  # starting over, the natural way
    status, out, err = one_trial(sweep, tmp_path)
    if CONFIG["trainer"]["logger"]["class_path"].endswith(("TensorBoardLogger", "CSVLogger")):
        # These name a trial's folder trial_N: the new trial 0 would write, and resume, the old one's.
        last = err.strip().splitlines()[-1]
        assert status == 1 and last.startswith(f"error: run folder {old['run']} "), err
        assert "holds a run of another study" in err
    else:  # run ids name the folders: the new trial has its own
        assert status == 0, err
        (new,) = [record for record in records(tmp_path) if record["study_id"] != old["study_id"]]
        assert new["run"] != old["run"]
    assert yaml.safe_load((old["run"] / "trial.yaml").read_text())["study_id"] == old["study_id"]


@pytest.mark.slow
def test_a_half_written_journal_entry_is_dropped_and_the_study_goes_on(sweep, tmp_path):
    status, _, err = one_trial(sweep, tmp_path)
    assert status == 0, err
    journal = tmp_path / f"{SWEEP['name']}.journal"
    with journal.open("a") as file:
        file.write('{"op_code": 5, "worker_id": "a-worker-killed-mid-wr')  # no end, no newline
    status, out, err = sweep("--trials=2", "--trainer.max_epochs=1", log_dir=tmp_path)
    assert status == 0, err
    assert f"study journal {journal}: dropped a half-written last entry" in out
    assert_trials_each_once(tmp_path, 2)


@pytest.mark.slow
def test_a_trial_that_failed_not_by_its_values_runs_again_with_them(sweep, tmp_path):
    fail_once = probes.option("FailOnce", path=tmp_path / "failed-once")
    status, out, err = one_trial(sweep, tmp_path, *fail_once)
    assert status == 1 and "the disk is not mounted" in err.strip().splitlines()[-1], err
    status, out, err = one_trial(sweep, tmp_path, *fail_once)
    assert status == 0, err
    failed, rerun = study(tmp_path).trials
    assert rerun.user_attrs["rerun_of"] == failed.number and rerun.params == failed.params
    assert f"study {SWEEP['name']}: 1 complete, 1 interrupted (1 wanted)" in out
