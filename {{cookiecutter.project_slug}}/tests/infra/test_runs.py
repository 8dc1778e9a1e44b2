"""Run identity: each run its own folder, one writer per folder, and a requeued SLURM job resumes its own."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import probes
import pytest
import pytorch_lightning as pl
from conftest import (
    PROBES_ENV,
    PROJECT_ROOT,
    checkpointed_runs,
    load_checkpoint,
    logged_steps,
    run_folders,
    run_train,
)
from metrics import REPLAYED_STEPS_DISCARDED, RESUME_CONTINUES_RUN, read_scalars
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from {{ cookiecutter.package_name }}.infra.command.claims import (
    LOCK_FILE,
    claim_version,
    job_runs,
    lock_run,
    release_runs,
)
from {{ cookiecutter.package_name }}.infra.command.resume import best_checkpoint

SHORT = ("--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1")
# A process killed (SIGKILL) at the end of its second training step, before its first checkpoint.
KILL_AT_STEP_2 = probes.option("KillAt", epoch=0, batch=1)


def test_runs_started_together_claim_different_folders(tmp_path):
    starts = threading.Barrier(8)

    def claim(_: int) -> int:
        starts.wait()
        return claim_version(tmp_path)

    with ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(claim, range(8)))
    assert sorted(versions) == list(range(8))


@pytest.fixture
def holder():
    """``holder(run)``: another process that holds ``run``'s lock, as a run still training would."""
    processes: list[subprocess.Popen] = []

    def hold(run: Path) -> subprocess.Popen:
        code = "import sys, pathlib; from {{ cookiecutter.package_name }}.infra.command.claims import lock_run; "
        code += "lock_run(pathlib.Path(sys.argv[1])); print('locked', flush=True); sys.stdin.read()"
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(run)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )
        processes.append(process)
        assert process.stdout.readline() == "locked\n"
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_a_run_being_written_is_not_resumed_by_a_second_process(cli, holder, tmp_path):
    cli("fit", "--trainer.max_epochs=1", *SHORT, log_dir=tmp_path)
    (run,) = checkpointed_runs(tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    saved = last.read_bytes()
    training = holder(run)

    resumed = cli("fit", "--ckpt_path=last", "--trainer.max_epochs=2", *SHORT, log_dir=tmp_path, check=False)
    if RESUME_CONTINUES_RUN:
        # The resume would write into the run the other process writes: refused, and nothing written.
        assert resumed.returncode == 1
        assert (
            resumed.stderr.strip()
            .splitlines()[-1]
            .startswith(
                f"error: run folder {run.resolve()} is in use by pid {training.pid} on {socket.gethostname()}"
            )
        )
        assert last.read_bytes() == saved and checkpointed_runs(tmp_path) == [run]
    else:
        # This logger resumes into a new run folder: nothing of the running one is touched.
        assert resumed.returncode == 0, resumed.stderr
        assert last.read_bytes() == saved and len(checkpointed_runs(tmp_path)) == 2

    training.kill()  # a lock left by a killed process does not block
    training.wait()
    cli("fit", "--ckpt_path=last", "--trainer.max_epochs=3", *SHORT, log_dir=tmp_path)
    newest = max(checkpointed_runs(tmp_path), key=lambda r: (r / "checkpoints" / "last.ckpt").stat().st_mtime)
    assert load_checkpoint(newest / "checkpoints" / "last.ckpt")["epoch"] == 2


def job_of(run: Path) -> str:
    """The SLURM job recorded in a run's lock file."""
    return re.match(r"SLURM job (\w+), ", (run / LOCK_FILE).read_text()).group(1)


def test_the_other_ranks_of_a_requeued_job_find_its_run_while_rank_0_locks_it(tmp_path, monkeypatch):
    # Every rank of a requeued attempt looks for the job's run (job_runs) as rank 0 locks it again; a rank
    # that missed it would start from scratch while rank 0 resumed, and DDP would hang or abort.
    run = tmp_path / "version_0"
    monkeypatch.setenv("SLURM_JOB_ID", "2001")
    with monkeypatch.context() as first_attempt:  # its record was longer: a longer host name
        first_attempt.setattr(socket, "gethostname", lambda: "node-with-a-much-longer-name")
        lock_run(run)
        release_runs()
    seen = []

    def watched(write):
        def call(*args):
            result = write(*args)
            seen.append(job_runs([run], "2001"))
            return result

        return call

    for name in ("pwrite", "ftruncate"):
        monkeypatch.setattr(os, name, watched(getattr(os, name)))
    lock_run(run)
    release_runs()
    assert seen and all(found == [run] for found in seen), seen


# Lightning's advice to use srun, given inside SLURM jobs: these only pretend to be one.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The `srun` command is available")
def test_a_requeued_slurm_job_resumes_its_own_run_not_the_newest(cli, tmp_path, monkeypatch):
    for job in ("101", "202"):  # job 202 starts later: its run is the project's newest
        monkeypatch.setenv("SLURM_JOB_ID", job)
        cli("fit", "--trainer.max_epochs=1", *SHORT, log_dir=tmp_path)
    other = next(run for run in checkpointed_runs(tmp_path) if job_of(run) == "202")
    others_checkpoint = (other / "checkpoints" / "last.ckpt").read_bytes()

    # Job 101 requeued: SLURM_RESTART_COUNT > 0, and the sbatch script adds --ckpt_path last.
    monkeypatch.setenv("SLURM_JOB_ID", "101")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    cli("fit", "--ckpt_path=last", "--trainer.max_epochs=2", *SHORT, log_dir=tmp_path)
    resumed = [run for run in checkpointed_runs(tmp_path) if job_of(run) == "101"]
    assert max(load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] for run in resumed) == 1
    assert (other / "checkpoints" / "last.ckpt").read_bytes() == others_checkpoint

    # Requeued before its first checkpoint: from scratch, not from another job's run. Its first attempt,
    # killed at its second step, had claimed a folder and logged there: a logger that can drop those steps
    # (TensorBoard) starts again in that folder, the others in a new one.
    monkeypatch.setenv("SLURM_JOB_ID", "303")
    monkeypatch.delenv("SLURM_RESTART_COUNT")
    one_epoch = ("--trainer.max_epochs=1", "--trainer.log_every_n_steps=1", *SHORT)
    killed = run_train("fit", *one_epoch, *KILL_AT_STEP_2, log_dir=tmp_path, check=False, env=PROBES_ENV)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    started = cli("fit", "--ckpt_path=last", *one_epoch, log_dir=tmp_path)
    assert "SLURM job 303 was requeued before its first checkpoint" in started.stderr
    runs = [run for run in run_folders(tmp_path) if job_of(run) == "303"]
    assert len(runs) == (1 if REPLAYED_STEPS_DISCARDED else 2)
    (fresh,) = [run for run in checkpointed_runs(tmp_path) if job_of(run) == "303"]
    # As far as job 202's run of one epoch from scratch, not further, and each step logged once.
    steps = [load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] for run in (fresh, other)]
    assert steps[0] == steps[1]
    logged = logged_steps(read_scalars(fresh))
    assert len(logged) == len(set(logged)) == steps[0]


def test_best_is_found_beside_last_after_the_run_moved(trained_run, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(trained_run, moved)
    (run,) = checkpointed_runs(moved)
    best = best_checkpoint(run / "checkpoints" / "last.ckpt")
    assert best.parent == run / "checkpoints" and best.is_file()


class FailsToBuild(pl.LightningModule):
    """A model whose constructor refuses its settings, as a model does when given a bad one."""

    def __init__(self) -> None:
        raise MisconfigurationException("model.init_args: a setting this model refuses")


def test_a_run_that_fails_before_it_starts_leaves_no_folder(cli, tmp_path):
    logs = tmp_path / "new-logs"
    result = cli("fit", f"--model={__name__}.FailsToBuild", log_dir=logs, check=False)
    assert result.returncode == 1 and "a setting this model refuses" in result.stderr.strip().splitlines()[-1]
    assert not logs.exists(), sorted(str(path) for path in logs.rglob("*"))
