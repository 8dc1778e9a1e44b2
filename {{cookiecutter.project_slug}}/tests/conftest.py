"""Shared helpers: run the real entry point in a subprocess and read back what it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_train(
    *args: str, log_dir: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python train.py <args>`` the way a user does, with logs and checkpoints under ``log_dir``.

    With ``check`` (the default) the run must succeed; without, the caller inspects the failure. ``env``
    adds environment variables.
    """
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        *args,
        f"--trainer.logger.init_args.save_dir={log_dir}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    environment = {**os.environ, **(env or {})}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, env=environment
    )
    if check:
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All TensorBoard scalars of one run directory, as ``{tag: [(step, value), ...]}`` ordered by step.

    The directory is read as TensorBoard reads it: a resumed run's restart marker discards what the
    interrupted run logged after its checkpoint, so each step appears once.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        tag: sorted((event.step, event.value) for event in accumulator.Scalars(tag))
        for tag in accumulator.Tags()["scalars"]
    }


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint the safe way: tensors and plain containers only."""
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 4-epoch fit through train.py, shared by the tests that inspect its output."""
    log_dir = tmp_path_factory.mktemp("logs")
    run_train("fit", "--trainer.max_epochs=4", log_dir=log_dir)
    return log_dir
