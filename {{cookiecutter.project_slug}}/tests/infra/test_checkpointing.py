"""The checkpoint writer and the random states, without a training run: atomic writes, one file for one
state, a queue that does not make training wait, generators restored on fewer GPUs, and callback states
filed under Lightning's keys.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
from typing import Any, BinaryIO

import pytest
import pytorch_lightning as pl
import torch
from conftest import load_checkpoint

from {{ cookiecutter.package_name }}.infra.command.profiling import FixedStateKey
from {{ cookiecutter.package_name }}.infra.faults.checkpoint_callbacks import ModelCheckpoint
from {{ cookiecutter.package_name }}.infra.faults.checkpointing import AtomicCheckpointIO
from {{ cookiecutter.package_name }}.infra.faults.durable import current_umask, write_text
from {{ cookiecutter.package_name }}.infra.faults.early_stopping import ResumableEarlyStopping
from {{ cookiecutter.package_name }}.infra.faults.random_state import RandomStateCheckpoint


class FailingCheckpointIO(AtomicCheckpointIO):
    """Writes half a checkpoint, then fails like a full disk."""

    def write(self, checkpoint: dict[str, Any], file: BinaryIO) -> None:
        file.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


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
    assert target.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def test_a_write_removes_only_the_temporary_files_of_writers_that_ended(tmp_path):
    """Two sweep workers may write sweep-best.yaml at once: neither removes the file the other is filling."""
    target, host = tmp_path / "sweep-best.yaml", socket.gethostname()
    ended = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=subprocess.PIPE).stdout
    )
    running = [os.getppid(), os.getpid()]  # the other writer; and another write of this process's
    left = {tmp_path / f".{target.name}.{host}.{ended}.killed.tmp"}
    kept = {tmp_path / f".{target.name}.{host}.{pid}.filling.tmp" for pid in running}
    kept.add(tmp_path / f".{target.name}.another-machine.{ended}.filling.tmp")
    for path in left | kept:
        path.write_text("half")
    write_text(target, "whole")
    assert target.read_text() == "whole"
    assert {path for path in tmp_path.iterdir() if path != target} == kept


def test_a_failed_write_cancels_the_removals_after_it(tmp_path):
    """Lightning removes the old best once the new best is saved: not if that save failed."""
    old_best, new_best = tmp_path / "best-epoch=000.ckpt", tmp_path / "best-epoch=001.ckpt"
    writer = AtomicCheckpointIO()
    writer.save_checkpoint({"epoch": 0, "weight": torch.ones(3)}, old_best)
    writer.teardown()
    failing = FailingCheckpointIO()
    failing.save_checkpoint({"epoch": 1, "weight": torch.zeros(3)}, new_best)
    # The write fails in the background: its failure is raised by the removal if it has failed by then (the
    # removal is then not queued at all), else by the end of the run.
    with pytest.raises(OSError, match=f"could not write checkpoint {new_best}: No space left on device"):
        try:
            failing.remove_checkpoint(old_best)
        finally:
            failing.teardown()
    assert failing.failure is not None and "MiB free there" in str(failing.failure)
    assert load_checkpoint(old_best)["epoch"] == 0 and not new_best.exists()


def test_no_name_is_given_to_a_write_that_failed(tmp_path):
    best, last = tmp_path / "best.ckpt", tmp_path / "last.ckpt"
    writer = AtomicCheckpointIO()
    writer.save_checkpoint({"epoch": 1, "global_step": 10, "weight": torch.ones(3)}, best)
    writer.save_checkpoint({"epoch": 2, "global_step": 20, "weight": torch.ones(3)}, last)
    writer.teardown()
    failing, state = FailingCheckpointIO(), {"epoch": 3, "global_step": 30, "weight": torch.zeros(3)}
    failing.save_checkpoint(state, best)
    with pytest.raises(OSError, match="No space left"):
        # Would be a link to the new best. Raises here if the write has failed by now, else at the end.
        failing.save_checkpoint(dict(state), last)
        failing.teardown()
    failing.teardown()
    assert (load_checkpoint(best)["epoch"], load_checkpoint(last)["epoch"]) == (1, 2)


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
            disk_ready.wait(timeout=120)
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


def test_state_keys_computed_once_are_lightnings_so_checkpoints_load_either_way():
    # A checkpoint files each callback's state under its key: these must be the keys Lightning computes.
    settings = {"monitor": "val/acc", "mode": "max", "every_n_epochs": 2}
    assert ModelCheckpoint(**settings).state_key == pl.callbacks.ModelCheckpoint(**settings).state_key
    stopper = ResumableEarlyStopping(monitor="val/acc", mode="max")
    assert stopper.state_key == super(FixedStateKey, stopper).state_key
    assert "val/acc" in stopper.state_key
