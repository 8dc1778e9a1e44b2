"""Faults: a failed checkpoint write, SIGTERM, and SIGKILL at chosen moments followed by ``--ckpt_path last``.

The kills come from ``probes.py``, plugged into real ``train.py`` runs from the command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import torch
from conftest import (
    PROJECT_ROOT,
    batch_size_for,
    checkpointed_runs,
    command_line,
    load_checkpoint,
    run_in_process,
    run_train,
)
from metrics import REPLAYED_STEPS_DISCARDED, RESUME_CONTINUES_RUN, read_scalars

from {{ cookiecutter.package_name }}.infra.checkpointing import AtomicCheckpointIO, RandomStateCheckpoint
from {{ cookiecutter.package_name }}.infra.preemption import RESUME_HINT
{%- if cookiecutter.logger == "tensorboard" %}
from {{ cookiecutter.package_name }}.infra.resume import discard_logs_after
{%- endif %}

PROBES_ENV = {"PYTHONPATH": str(PROJECT_ROOT / "tests")}
BATCHES = 5  # training batches per epoch of the short runs


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


class FailingCheckpointIO(AtomicCheckpointIO):
    """Writes half a checkpoint, then fails like a full disk."""

    def write(self, checkpoint: dict[str, Any], file: BinaryIO) -> None:
        file.write(b"\0" * 1000)
        raise OSError(28, "No space left on device")


def test_failed_write_leaves_the_previous_checkpoint(tmp_path):
    target = tmp_path / "last.ckpt"
    writer = AtomicCheckpointIO()
    writer.save_checkpoint({"epoch": 1, "weight": torch.ones(3)}, target)
    writer.teardown()
    failing = FailingCheckpointIO()
    failing.save_checkpoint({"epoch": 2, "weight": torch.zeros(3)}, target)
    # Written in the background: the failure reaches the run at its next save, or at its end at the latest.
    with pytest.raises(OSError, match="No space left"):
        failing.teardown()
    assert load_checkpoint(target)["epoch"] == 1
    assert [path.name for path in tmp_path.iterdir()] == ["last.ckpt"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_one_state_saved_under_two_names_is_written_once(tmp_path):
    best, last, weights_only = (tmp_path / name for name in ("best.ckpt", "last.ckpt", "weights.ckpt"))
    state = {"epoch": 3, "global_step": 40, "state_dict": {"weight": torch.ones(3)}, "optimizer_states": []}
    writer = AtomicCheckpointIO()
    writer.save_checkpoint(state, best)
    writer.save_checkpoint(dict(state), last)
    writer.save_checkpoint({key: state[key] for key in ("epoch", "global_step", "state_dict")}, weights_only)
    writer.wait()
    assert last.samefile(best) and not weights_only.samefile(best)
    # The next epoch's last.ckpt replaces the name: the best checkpoint keeps its contents.
    writer.save_checkpoint({**state, "epoch": 4, "global_step": 50}, last)
    writer.teardown()
    assert (load_checkpoint(best)["epoch"], load_checkpoint(last)["epoch"]) == (3, 4)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt", "weights.ckpt"]


def test_removals_and_links_queue_behind_a_slow_write_without_making_training_wait(tmp_path):
    written, disk_ready = [], threading.Event()

    class SlowDisk(AtomicCheckpointIO):
        def write(self, checkpoint: dict[str, Any], file: BinaryIO) -> None:
            disk_ready.wait(timeout=5)
            super().write(checkpoint, file)
            written.append(file.name)

    writer = SlowDisk()
    state = {"epoch": 3, "global_step": 40, "state_dict": {"weight": torch.ones(3)}}
    writer.save_checkpoint(state, tmp_path / "best-epoch=003.ckpt")
    writer.remove_checkpoint(tmp_path / "best-epoch=002.ckpt")
    writer.save_checkpoint(dict(state), tmp_path / "last.ckpt")
    assert not written  # none of the three waited for the disk
    disk_ready.set()
    writer.teardown()
    assert (tmp_path / "last.ckpt").samefile(tmp_path / "best-epoch=003.ckpt") and len(written) == 1


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def kill_option(kind: str, **init_args: object) -> list[str]:
    """Options adding a fault from probes.py to a run: a callback (KillAt) or the checkpoint plugin."""
    if kind == "KillDuringWrite":
        options = ["--trainer.plugins=probes.KillDuringWrite"]
        return options + [f"--trainer.plugins.init_args.{key}={value}" for key, value in init_args.items()]
    options = ["--trainer.callbacks+=probes.KillAt"]
    return options + [f"--trainer.callbacks.init_args.{key}={value}" for key, value in init_args.items()]


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
        kill_option("KillAt", hook="train", epoch=1, batch=2),
        kill_option("KillAt", hook="validation", epoch=1, batch=2),
        # Each epoch writes one file (a new best, which last.ckpt then links to, or last.ckpt alone): the
        # second is the end of epoch 1, killed half-way through.
        kill_option("KillDuringWrite", write=2),
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
    resumed, reference = (
        load_checkpoint(run / "checkpoints" / "last.ckpt") for run in (run_dir, uninterrupted)
    )
    assert resumed["epoch"] == reference["epoch"] == 2
    # Same seed, deterministic CPU kernels and restored random generators: identical up to float rounding.
    for name, weight in reference["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], weight, rtol=0, atol=1e-6)
    scalars, expected = read_scalars(run_dir), read_scalars(uninterrupted)
    for tag in ("train/loss", "val/loss", "val/acc"):
        steps, expected_steps = ([step for step, _ in values[tag]] for values in (scalars, expected))
        if REPLAYED_STEPS_DISCARDED:
            # The same steps, each once: what the killed run logged after its checkpoint was discarded.
            assert steps == expected_steps, tag
        else:
            assert set(steps) <= set(expected_steps) and steps[-1] == expected_steps[-1], tag
    for tag in ("val/loss", "val/acc"):
        assert scalars[tag][-1][1] == pytest.approx(expected[tag][-1][1], abs=1e-6), tag


{% if cookiecutter.logger == "tensorboard" -%}
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
@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])  # kill or a scheduler; Ctrl-C
def test_stop_signal_saves_a_resumable_checkpoint_and_fails(cli, tmp_path, name):
    killed = run_train(
        *short_run(),
        *kill_option("KillAt", epoch=1, batch=2, signal=name),
        log_dir=tmp_path,
        check=False,
        env=PROBES_ENV,
    )
    assert killed.returncode == 128 + signal.Signals[name], killed.stderr
    assert killed.stderr.strip().splitlines()[-1] == f"stopped by {name}: {RESUME_HINT}"
    (run_dir,) = checkpointed_runs(tmp_path)
    saved = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    # Saved where it stopped (after the fourth batch of epoch 1, where the signal is first checked for),
    # not at the end of epoch 0.
    assert (saved["epoch"], saved["global_step"]) == (1, BATCHES + 4)

    cli(*short_run(), "--ckpt_path=last", log_dir=tmp_path)
    run_dir = checkpointed_runs(tmp_path)[-1]
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 2
    steps = [step for step, _ in read_scalars(run_dir)["train/loss"]]
    if REPLAYED_STEPS_DISCARDED:
        assert steps == list(range(3 * BATCHES))
    else:
        assert steps[-1] == 3 * BATCHES - 1 and len(steps) == len(set(steps))


def test_gpu_random_states_restore_on_fewer_gpus(monkeypatch):
    """A checkpoint saved on 2 GPUs, resumed or evaluated on 1: one state each, no missing device."""
    restored = []

    def set_rng_state(state: torch.Tensor, device: int = 0) -> None:
        if device >= 1:
            raise RuntimeError(f"invalid device ordinal {device}")  # what CUDA says on a 1-GPU machine
        restored.append(device)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for module in (torch.cuda, torch.cuda.random):
        monkeypatch.setattr(module, "set_rng_state", set_rng_state)
    state = RandomStateCheckpoint().state_dict()
    state["cuda"] = [torch.get_rng_state(), torch.get_rng_state()]
    RandomStateCheckpoint().load_state_dict(state)
    assert restored == [0]


@pytest.mark.slow
def test_a_slurm_job_stuck_after_the_requeue_signal_is_requeued_anyway(tmp_path):
    """If the processes cannot stop on their own (one stuck in a collective, say), the watchdog requeues."""
    scontrol = tmp_path / "scontrol"  # records how it was called, in place of SLURM's
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "called"}\n', encoding="utf-8")
    scontrol.chmod(0o755)
    stuck = (
        "import os, signal, time\n"
        "from {{ cookiecutter.package_name }}.infra import signals\n"
        "signals.REQUEUE_GRACE_S = 0.5\n"
        "signals.catch_stop_signals()\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "time.sleep(60)  # never reaches a point where it could stop\n"
    )
    env = {
        **os.environ,
        "SLURM_JOB_ID": "123",
        "SLURM_PROCID": "0",
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        [sys.executable, "-c", stuck], capture_output=True, text=True, timeout=30, cwd=PROJECT_ROOT, env=env
    )
    assert result.returncode == 128 + signal.SIGUSR1
    assert "has not stopped: requeuing from the last checkpoint" in result.stderr
    assert "time.sleep" in result.stderr or 'File "<string>", line 6' in result.stderr  # where it was stuck
    assert (tmp_path / "called").read_text().split() == ["requeue", "123"]
