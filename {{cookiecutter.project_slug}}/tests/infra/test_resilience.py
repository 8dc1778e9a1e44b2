"""Faults in real runs: SIGTERM, and SIGKILL at chosen moments followed by ``--ckpt_path last``.

The kills come from ``probes.py``, plugged into real ``train.py`` runs from the command line.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import probes
import pytest
from conftest import (
    MONITOR,
    PROBES_ENV,
    PROJECT_ROOT,
    assert_same_end,
    batch_size_for,
    checkpointed_runs,
    command_line,
    load_checkpoint,
    logged_steps,
    require_resumable_loader,
    run_in_process,
    run_train,
)
from metrics import REPLAYED_STEPS_DISCARDED, RESUME_CONTINUES_RUN, read_scalars

{% if cookiecutter.logger == "tensorboard" -%}
from {{ cookiecutter.package_name }}.infra.command.resume import discard_logs_after
{% endif -%}
from {{ cookiecutter.package_name }}.infra.faults.preemption import RESUME_HINT

BATCHES = 5  # training batches per epoch of the short runs
EPOCHS_IF_NOT_STOPPED = 8  # a run that a failure should have stopped, but did not, gets this far


def short_run() -> tuple[str, ...]:
    """Short, bit-for-bit repeatable runs: 3 epochs of 5 batches, at least 3 validation batches, every step
    logged. The batch size is made small enough for that, whatever the size of the data.
    """
    return (
        "fit",
        "--trainer.max_epochs=3",
        f"--trainer.limit_train_batches={BATCHES}",
        "--trainer.deterministic=true",
        f"--data.init_args.batch_size={batch_size_for(BATCHES, val_batches=3)}",
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The run that the interrupted ones must reproduce."""
    log_dir = tmp_path_factory.mktemp("uninterrupted")
    assert run_in_process(command_line(short_run(), log_dir)) == 0
    (run,) = checkpointed_runs(log_dir)
    return run


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault",
    [
        probes.option("KillAt", hook="train", epoch=1, batch=2),
        probes.option("KillAt", hook="validation", epoch=1, batch=2),
        # Each epoch writes one file (a new best, which last.ckpt then links to, or last.ckpt alone): the
        # second is the end of epoch 1, killed half-way through.
        probes.option("KillDuringWrite", write=2),
    ],
    ids=["mid-training", "mid-validation", "mid-checkpoint-write"],
)
def test_sigkill_then_resume_matches_an_uninterrupted_run(cli, uninterrupted, tmp_path, fault):
    killed = run_train(*short_run(), *fault, log_dir=tmp_path, check=False, env=PROBES_ENV)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (killed_run,) = checkpointed_runs(tmp_path)
    # Every kill point lies in epoch 1, so last.ckpt holds the end of epoch 0, whole and loadable.
    assert load_checkpoint(killed_run / "checkpoints" / "last.ckpt")["epoch"] == 0

    cli(*short_run(), "--ckpt_path=last", log_dir=tmp_path)  # resuming needs no process of its own
    runs = checkpointed_runs(tmp_path)
    assert len(runs) == (1 if RESUME_CONTINUES_RUN else 2)
    run_dir = killed_run if RESUME_CONTINUES_RUN else (set(runs) - {killed_run}).pop()
    # A write cut short leaves its temporary file; the next write of the same checkpoint removes it.
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))
    assert_same_end(run_dir, uninterrupted)
    scalars, expected = read_scalars(run_dir), read_scalars(uninterrupted)
    for tag in expected:
        steps, expected_steps = ([step for step, _ in values[tag]] for values in (scalars, expected))
        if REPLAYED_STEPS_DISCARDED:
            # The same steps, each once: what the killed run logged after its checkpoint was discarded.
            assert steps == expected_steps, tag
        else:
            assert set(steps) <= set(expected_steps) and steps[-1] == expected_steps[-1], tag
    assert scalars[MONITOR][-1][1] == pytest.approx(expected[MONITOR][-1][1], abs=1e-6)


def test_a_full_disk_stops_the_run_at_once_in_one_line_and_keeps_every_checkpoint_before(cli, tmp_path):
    # The second file is the end of epoch 1 (a new best, or last.ckpt): written in the background, it fails.
    longer = f"--trainer.max_epochs={EPOCHS_IF_NOT_STOPPED}"
    result = cli(*short_run(), longer, *probes.option("DiskFullAt", write=2), log_dir=tmp_path, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    said = result.stderr.strip().splitlines()[-1]
    assert said.startswith("error: could not write checkpoint ") and "No space left on device" in said, said
    assert "MiB free there" in said
    (run_dir,) = checkpointed_runs(tmp_path)
    # Epoch 0's checkpoints are intact: Lightning's removal of the old best waited for its successor.
    saved = {path.name: load_checkpoint(path)["epoch"] for path in (run_dir / "checkpoints").glob("*.ckpt")}
    assert saved and set(saved.values()) == {0}, saved
    # Stopped at the first batch or epoch start after the background write failed: in epoch 2, or later by the
    # time the writer took on a loaded machine; not at the end of the run.
    assert max(logged_steps(read_scalars(run_dir))) < 4 * BATCHES < EPOCHS_IF_NOT_STOPPED * BATCHES


@pytest.mark.slow
def test_a_stop_signal_without_checkpointing_says_nothing_was_saved(tmp_path):
    config = tmp_path / "no-checkpoints.yaml"
    preemption = "{{ cookiecutter.package_name }}.infra.faults.preemption.PreemptionCheckpoint"
    config.write_text(f"trainer:\n  enable_checkpointing: false\n  callbacks: [{preemption}]\n")
    stop = probes.option("KillAt", epoch=1, batch=1, signal="SIGTERM")
    options = (*short_run(), f"--config={config}", *stop)
    killed = run_train(*options, log_dir=tmp_path, check=False, env=PROBES_ENV)
    assert killed.returncode == 128 + signal.SIGTERM, killed.stderr
    said = "stopped by SIGTERM: nothing was saved (checkpointing is off)"
    assert killed.stderr.strip().splitlines()[-1] == said
    assert not list(tmp_path.rglob("*.ckpt"))


{% if cookiecutter.logger == "tensorboard" -%}
def test_an_event_file_dated_in_the_future_does_not_make_a_resume_wait(tmp_path, monkeypatch, caplog):
    import logging
    import time

    from jsonargparse import Namespace

    import {{ cookiecutter.package_name }}.infra.command.resume as resume

    caplog.set_level(logging.INFO)
    waited = []
    monkeypatch.setattr(resume.time, "sleep", waited.append)
    (tmp_path / f"events.out.tfevents.{int(time.time()) + 3600}.host.1.0").write_bytes(b"")
    logger = Namespace(class_path="pytorch_lightning.loggers.TensorBoardLogger", init_args=Namespace())
    resume.discard_logs_after(2, logger, tmp_path)
    assert not waited or max(waited) <= resume.MAX_CLOCK_WAIT_S
    assert "s in the future (a clock changed?)" in caplog.text


def test_a_resume_in_the_second_the_run_started_still_discards_the_replayed_steps(tmp_path):
    """TensorBoard reads event files in name order: the second each was created, then the process id."""
    from jsonargparse import Namespace
    from torch.utils.tensorboard import SummaryWriter

    interrupted = SummaryWriter(tmp_path)
    for step in range(4):
        interrupted.add_scalar("loss", 1.0, step)
    interrupted.close()
    # Written in this second by a process whose id sorts after any other.
    (events,) = tmp_path.iterdir()
    events.rename(events.with_name(events.name.replace(f".{os.getpid()}.", ".99999999.")))
    logger = Namespace(class_path="pytorch_lightning.loggers.TensorBoardLogger", init_args=Namespace())
    discard_logs_after(2, logger, tmp_path)
    resumed = SummaryWriter(tmp_path, purge_step=logger.init_args.purge_step)
    for step in range(2, 6):
        resumed.add_scalar("loss", 0.5, step)
    resumed.close()
    assert read_scalars(tmp_path)["loss"] == [(0, 1.0), (1, 1.0), (2, 0.5), (3, 0.5), (4, 0.5), (5, 0.5)]


{% endif -%}
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "batch"),
    # kill or a scheduler, mid-epoch; Ctrl-C, first seen in the last batch that limit_train_batches allows
    [("SIGTERM", 2), ("SIGINT", BATCHES - 2)],
    ids=["SIGTERM-mid-epoch", "SIGINT-in-the-last-batch"],
)
def test_stop_signal_saves_a_checkpoint_that_resumes_at_its_batch(
    cli, uninterrupted, recwarn, tmp_path, name, batch
):
    require_resumable_loader()
    killed = run_train(
        *short_run(),
        *probes.option("KillAt", epoch=1, batch=batch, signal=name),
        log_dir=tmp_path,
        check=False,
        env=PROBES_ENV,
    )
    assert killed.returncode == 128 + signal.Signals[name], killed.stderr
    assert killed.stderr.strip().splitlines()[-1] == f"stopped by {name}: {RESUME_HINT}"
    (run_dir,) = checkpointed_runs(tmp_path)
    saved = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    seen = batch + 1  # the signal is first checked for after the next batch
    mid_epoch = seen < BATCHES - 1
    # Mid-epoch, the run saves where it stopped, not at the end of epoch 0. In the epoch's last batch it
    # does not: the end of epoch 1, after its validation, is the resume point.
    assert (f"{name} received: saved" in killed.stderr) == mid_epoch
    assert (f"{name} received: the end-of-epoch last.ckpt is the resume point" in killed.stderr) != mid_epoch
    assert (saved["epoch"], saved["global_step"]) == (1, BATCHES + seen + 1 if mid_epoch else 2 * BATCHES)

    cli(*short_run(), "--ckpt_path=last", log_dir=tmp_path)
    # Lightning warns when a loader cannot resume mid-epoch; the resumed epoch then draws other batches.
    assert not [str(w.message) for w in recwarn if "pytorch_lightning" in w.filename]
    run_dir = checkpointed_runs(tmp_path)[-1]
    assert_same_end(run_dir, uninterrupted)  # the rest of epoch 1 on the batches it would have had
    steps = logged_steps(read_scalars(run_dir))
    if REPLAYED_STEPS_DISCARDED:
        assert steps == list(range(3 * BATCHES))
    else:
        assert steps[-1] == 3 * BATCHES - 1 and len(steps) == len(set(steps))


@pytest.mark.slow
def test_ctrl_c_again_as_the_stopped_run_exits_ends_it_at_once_quietly(tmp_path):
    killed = run_train(
        *short_run(),
        *probes.option("KillAt", epoch=1, batch=1, signal="SIGINT"),
        *probes.option("SignalAtExit", signal="SIGINT"),
        log_dir=tmp_path,
        check=False,
        env=PROBES_ENV,
    )
    assert killed.returncode == 128 + signal.SIGINT, killed.stderr
    assert f"stopped by SIGINT: {RESUME_HINT}" in killed.stderr.splitlines()
    assert killed.stderr.strip().splitlines()[-1] == "stopped by Ctrl-C at once: nothing more was saved"
    assert "Traceback" not in killed.stderr and "Exception ignored" not in killed.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("subcommand", "hook", "name"),
    [
        ("predict", "predict", "SIGTERM"),
        ("test", "test", "SIGINT"),
        ("validate", "validation", "SIGTERM"),
        ("predict", "setup", "SIGTERM"),
    ],
    ids=["predict-mid-loop", "test-ctrl-c", "validate-mid-loop", "predict-while-starting"],
)
def test_a_stop_signal_stops_evaluating_commands_with_a_hint_that_fits(
    trained_run, tmp_path, subcommand, hook, name
):
    logs = Path(shutil.copytree(trained_run, tmp_path / "logs"))
    stop = probes.option("KillAt", hook=hook, epoch=0, batch=0 if hook == "setup" else 1, signal=name)
    # Batches small enough for several of them to stop among.
    batches = f"--data.init_args.batch_size={batch_size_for(1, val_batches=3)}"
    result = run_train(
        subcommand, "--ckpt_path=best", batches, *stop, log_dir=logs, check=False, env=PROBES_ENV
    )
    assert result.returncode == 128 + signal.Signals[name], result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"stopped by {name}: it did not finish; run `python train.py {subcommand} ...` again"
    assert "Traceback" not in result.stderr
    assert not list(logs.rglob("predictions.csv"))


@pytest.mark.slow
@pytest.mark.parametrize("scontrol", ["missing", "refusing"])
def test_a_requeue_that_fails_says_so_and_how_to_resume(on_path, tmp_path, scontrol):
    if scontrol == "refusing":
        on_path("scontrol", 'echo "slurm_requeue error: Access/permission denied" >&2\nexit 1\n')
    # The stand-in alone on PATH, or no scontrol at all.
    env = {**PROBES_ENV, "PATH": str(tmp_path / "bin"), "SLURM_JOB_ID": "123"}
    requeue_signal = probes.option("KillAt", epoch=1, batch=1, signal="SIGUSR1")
    logs = tmp_path / "logs"  # beside bin/, which an MLflow store in tmp_path would take for an experiment
    killed = run_train(*short_run(), *requeue_signal, log_dir=logs, check=False, env=env)
    assert killed.returncode == 128 + signal.SIGUSR1, killed.stderr
    problem = "scontrol cannot be run" if scontrol == "missing" else "Access/permission denied"
    said = [line for line in killed.stderr.splitlines() if line.endswith("the job is not requeued")]
    assert len(said) == 1 and said[0].startswith("error: ") and problem in said[0], killed.stderr
    assert killed.stderr.strip().splitlines()[-1] == f"stopped by SIGUSR1: the requeue failed; {RESUME_HINT}"
    assert "Traceback" not in killed.stderr


@pytest.mark.slow
def test_a_requeue_signal_while_train_py_exits_does_not_fail_it():
    # Sent while the interpreter shuts down, after Python has given its signals back their default action.
    exiting = (
        "import os, runpy, signal, sys, time\n"
        "class SignalAtShutdown:\n"
        "    def __del__(self, kill=os.kill, pid=os.getpid(), sleep=time.sleep, signum=signal.SIGUSR1):\n"
        "        kill(pid, signum)\n"
        "        sleep(0.2)\n"
        "late = SignalAtShutdown()\n"
        "sys.argv = ['train.py', '--help']\n"
        "runpy.run_path('train.py', run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", exiting], capture_output=True, text=True, timeout=1200, cwd=PROJECT_ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "usage: train.py" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "before",
    ["", "signals.restore(signals.catch_stop_signals())  # a run that ended, as a sweep's trials do\n"],
    ids=["a run", "a sweep after a trial"],
)
def test_a_slurm_job_stuck_after_the_requeue_signal_is_requeued_anyway(scontrol, before):
    """If the processes cannot stop on their own (one stuck in a collective, say), the watchdog requeues."""
    stuck = (
        "import os, signal, time\n"
        "from {{ cookiecutter.package_name }}.infra.faults import signals\n"
        "signals.REQUEUE_GRACE_S = 0.5\n"
        "signals.catch_stop_signals()\n"
        f"{before}"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "time.sleep(60)  # never reaches a point where it could stop\n"
    )
    env = {**os.environ, "SLURM_JOB_ID": "123", "SLURM_PROCID": "0"}
    result = subprocess.run(
        [sys.executable, "-c", stuck], capture_output=True, text=True, timeout=1200, cwd=PROJECT_ROOT, env=env
    )
    assert result.returncode == 128 + signal.SIGUSR1
    assert "has not stopped: requeuing from the last checkpoint" in result.stderr
    where = f'File "<string>", line {stuck.count(chr(10))}'  # the last line: where it was stuck
    assert "time.sleep" in result.stderr or where in result.stderr
    assert scontrol.read_text().split() == ["requeue", "123"]
