"""The cluster path on a real SLURM: the rendered sbatch script itself, submitted with CPU overrides.

Each job is 2 CPU tasks on one node, so 2 DDP ranks (gloo). Signals reach the job the way SLURM sends them:
``scancel --signal=USR1`` is what ``#SBATCH --signal=SIGUSR1@90`` delivers before the time limit, and
``scontrol requeue`` is what preemption does (SIGTERM to every process, then a requeue).
"""

from __future__ import annotations

import json
import random
import re
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import render
from slurm import Cluster

pytestmark = pytest.mark.slow

# 2 ranks, tiny epochs (4 training batches each), every step logged.
TRAINING = (
    "--trainer.accelerator=cpu",
    "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=2",
    "--trainer.log_every_n_steps=1",
)
CPU_JOB = ("--nodes=1", "--gpus-per-node=0", "--ntasks-per-node=2", "--cpus-per-task=1", "--mem=0")
BATCHES = 4


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("slurm-project"), slurm=True)


def submit(cluster: Cluster, project: Path, logs: Path, *args: str, options: tuple[str, ...] = ()) -> str:
    """Submit the project's sbatch script with CPU settings, its runs written under ``logs``."""
    train_args = (*TRAINING, f"--trainer.logger.init_args.save_dir={logs}", *args)
    return cluster.submit(
        "scripts/slurm/train.sbatch", *train_args, cwd=project, options=(*CPU_JOB, *options)
    )


def output(project: Path, job: str) -> str:
    path = project / f"slurm-{job}.out"
    return path.read_text(errors="replace") if path.exists() else ""


def runs(logs: Path) -> list[Path]:
    return sorted(path.parent for path in logs.rglob("run.lock"))


def logged_steps(run: Path) -> list[int]:
    """The steps of ``train/loss`` as TensorBoard reads them (it drops what a resume replays)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Scalars("train/loss")]


def last_checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def assert_completed_once(run: Path, epochs: int) -> None:
    """The run reached its last epoch and logged every step exactly once."""
    last = last_checkpoint(run)
    assert last["epoch"] == epochs - 1
    steps = logged_steps(run)
    assert len(steps) == len(set(steps)) == last["global_step"] == (last["epoch"] + 1) * BATCHES, steps


def wait_for_training(cluster: Cluster, project: Path, job: str, epoch: int) -> None:
    """Wait until the job's first attempt has finished ``epoch``."""
    deadline = time.monotonic() + 600
    while f"epoch {epoch}:" not in output(project, job):
        assert time.monotonic() < deadline, output(project, job)
        assert cluster.job(job).state in ("PENDING", "RUNNING"), output(project, job)
        time.sleep(0.2)


def leftovers(*folders: Path) -> list[Path]:
    """Files Lightning's own SLURM handler would have left: hpc_ckpt_N.ckpt, restored by any later job."""
    return [path for folder in folders for path in folder.rglob("hpc_ckpt*")]


def listening_ranks(job: str) -> int:
    """How many of the job's Python processes have their SIGUSR1 handler installed.

    Before that, for the few milliseconds in which Python starts, SIGUSR1's default action ends a process:
    no program can act on a signal before its first line runs. The processes are found through /proc (the
    job id in their environment), since ``scontrol listpids`` misses tasks; srun, which catches SIGUSR1
    too, is not Python.
    """
    listening = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            program = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            status = (proc / "status").read_text()
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if f"SLURM_JOB_ID={job}".encode() not in environ or not Path(program).name.startswith("python"):
            continue
        caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
        listening += caught >> (signal.SIGUSR1 - 1) & 1
    return listening


def test_ddp_job_trains_to_the_end(cluster, project, tmp_path):
    job = submit(cluster, project, tmp_path, "--trainer.max_epochs=3")
    state = cluster.wait(job, ("COMPLETED", "FAILED", "CANCELLED"))
    assert state.state == "COMPLETED", output(project, job)
    assert "MEMBER: 2/2" in output(project, job)
    (run,) = runs(tmp_path)
    assert_completed_once(run, epochs=3)
    assert f"SLURM job {job}" in (run / "run.lock").read_text()


@pytest.mark.parametrize("how", ["time-limit signal", "preemption"])
def test_interrupted_job_requeues_resumes_and_completes(cluster, project, tmp_path, how):
    # SLURM takes up to a second or so to deliver a signal, in which these tiny epochs run by the dozen: the
    # job must not end first (12 epochs did, once checkpoints stopped writing last.ckpt every epoch).
    epochs = 100
    config = without_early_stopping(project, tmp_path)
    job = submit(cluster, project, tmp_path, f"--trainer.max_epochs={epochs}", f"--config={config}")
    wait_for_training(cluster, project, job, epoch=2)
    if how == "preemption":
        cluster.command("scontrol", "requeue", job)
    else:
        cluster.command("scancel", "--signal=USR1", job)
    state = cluster.wait(job, ("COMPLETED", "FAILED", "CANCELLED"))
    text = output(project, job)
    assert (state.state, state.restarts) == ("COMPLETED", 1), text
    assert text.count("Restored all states from the checkpoint") == 1, text
    (run,) = runs(tmp_path)
    assert_completed_once(run, epochs)
    # The requeue is the run's second attempt, appended by rank 0 of each: the job, its restarts, the start.
    first, second = json.loads((run / "provenance.json").read_text(encoding="utf-8"))["attempts"]
    assert [first["outcome"], second["outcome"]] == ["stopped", "completed"], (first, second)
    assert [attempt["host"]["slurm"]["job"] for attempt in (first, second)] == [job, job]
    assert [attempt["host"]["slurm"].get("restarts", "0") for attempt in (first, second)] == ["0", "1"]
    assert second["checkpoint"]["path"] == str((run / "checkpoints" / "last.ckpt").resolve())
    assert first["hardware"]["world_size"] == second["hardware"]["world_size"] == 2

    # The next job of the same project is a new experiment: a run of its own, from scratch.
    fresh = submit(cluster, project, tmp_path, "--trainer.max_epochs=2")
    assert cluster.wait(fresh, ("COMPLETED", "FAILED", "CANCELLED")).state == "COMPLETED"
    assert "Restoring states" not in output(project, fresh)
    new_run = (set(runs(tmp_path)) - {run}).pop()
    assert_completed_once(new_run, epochs=2)
    assert not leftovers(project, tmp_path)


def test_jobs_started_together_get_their_own_run_folders(cluster, project, tmp_path):
    jobs = [submit(cluster, project, tmp_path, "--trainer.max_epochs=2") for _ in range(2)]
    array = submit(cluster, project, tmp_path, "--trainer.max_epochs=2", options=("--array=0-1",))
    for job in (*jobs, f"{array}_0", f"{array}_1"):
        assert cluster.wait(job, ("COMPLETED", "FAILED", "CANCELLED")).state == "COMPLETED"
    folders = runs(tmp_path)
    assert len(folders) == 4
    owners = {re.search(r"SLURM job (\d+)", (run / "run.lock").read_text()).group(1) for run in folders}
    assert len(owners) == 4
    for run in folders:
        # One writer each: one event file, one config, a complete run.
        assert len(list(run.glob("events.out.tfevents.*"))) == 1
        assert_completed_once(run, epochs=2)


def test_sbatch_script_runs_on_old_bash_and_without_a_logs_folder(project):
    script = (project / "scripts" / "slurm" / "train.sbatch").read_text(encoding="utf-8")
    # SLURM opens the output file before the script runs, so a folder in its path must already exist.
    (output_file,) = re.findall(r"^#SBATCH --output=(\S+)", script, re.M)
    assert "/" not in output_file
    # With `set -u`, bash < 4.4 (still on RHEL 7 clusters) fails on "${empty[@]}": no arrays at all.
    assert "[@]" not in script and "[*]" not in script


def finished_epochs(project: Path, job: str) -> int:
    """How many epochs the job's attempts have finished so far, replayed ones included."""
    return len(re.findall(r"^epoch \d+:", output(project, job), re.M))


def without_early_stopping(project: Path, folder: Path) -> Path:
    """A config file that, read after the project's, keeps its callbacks but early stopping."""
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text(encoding="utf-8"))
    callbacks = [c for c in config["trainer"]["callbacks"] if not c["class_path"].endswith("EarlyStopping")]
    assert len(callbacks) == len(config["trainer"]["callbacks"]) - 1
    path = folder / "without early stopping.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}), encoding="utf-8")
    return path


def test_ten_signals_at_random_moments_each_requeue_and_the_job_completes(cluster, project, tmp_path):
    # SLURM takes up to a second or so to deliver a signal, and these tiny epochs run by the dozen meanwhile:
    # without early stopping, ten attempts cannot reach a plateau that ends the job before the last signal.
    epochs, deliveries = 200, 10
    config = without_early_stopping(project, tmp_path)
    job = submit(cluster, project, tmp_path, f"--trainer.max_epochs={epochs}", f"--config={config}")
    rng = random.Random(0)
    delays = []
    for delivery in range(deliveries):
        # The previous attempt's processes are gone once the next one runs.
        deadline = time.monotonic() + 600
        while (state := cluster.job(job).state) != "RUNNING" or listening_ranks(job) < 2:
            failure = f"delivery {delivery}: {state}, {output(project, job)}"
            assert state in ("PENDING", "RUNNING", "COMPLETING") and time.monotonic() < deadline, failure
            cluster.release(job)
            time.sleep(0.05)
        # A random moment: up to 3 s after both ranks listen (PyTorch importing, the ranks joining, the
        # restore), or up to 0.5 s after the attempt's first or second epoch; never past the end of the epoch
        # under way.
        epochs_before, more = finished_epochs(project, job), rng.randint(0, 2)
        while finished_epochs(project, job) < epochs_before + more:
            assert time.monotonic() < deadline, f"delivery {delivery}: {output(project, job)}"
            time.sleep(0.02)
        moment = time.monotonic() + (rng.uniform(0, 0.5) if more else rng.uniform(0, 3))
        while time.monotonic() < moment and finished_epochs(project, job) == epochs_before + more:
            time.sleep(0.02)
        assert cluster.job(job).state == "RUNNING", f"delivery {delivery}: {output(project, job)}"
        sent = time.monotonic()
        cluster.command("scancel", "--signal=USR1", job)
        while cluster.job(job).restarts == delivery:
            assert time.monotonic() - sent < 60, f"delivery {delivery} hung: {output(project, job)}"
            time.sleep(0.1)
        delays.append(time.monotonic() - sent)
    state = cluster.wait(job, ("COMPLETED", "FAILED", "CANCELLED"))
    assert (state.state, state.restarts) == ("COMPLETED", deliveries), output(project, job)
    (run,) = runs(tmp_path)
    assert_completed_once(run, epochs=epochs)
    assert not leftovers(project, tmp_path)
    print(f"{deliveries} deliveries: each requeued {min(delays):.1f}-{max(delays):.1f} s after its signal")
