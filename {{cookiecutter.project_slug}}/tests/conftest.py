"""Shared helpers: run the real entry point in a subprocess and read back what it wrote."""

from __future__ import annotations

{% if cookiecutter.example == "mnist" %}import json
{% endif %}import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
{%- if cookiecutter.example == "mnist" %}
from fake_mnist import write_fake_mnist
{%- endif %}

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Extra train.py options for every test run; the MNIST project points them at a small stand-in dataset.
TEST_ARGS: list[str] = []


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
        *TEST_ARGS,
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


def checkpointed_runs(log_dir: Path) -> list[Path]:
    """The run folders under ``log_dir`` that hold checkpoints, whatever the logger's layout."""
    return sorted(checkpoints.parent for checkpoints in log_dir.rglob("checkpoints"))


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint the safe way: tensors and plain containers only."""
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 4-epoch fit through train.py, shared by the tests that inspect its output."""
    log_dir = tmp_path_factory.mktemp("logs")
    run_train("fit", "--trainer.max_epochs=4", log_dir=log_dir)
    return log_dir
{%- if cookiecutter.example == "mnist" %}


@pytest.fixture(scope="session", autouse=True)
def fake_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MNIST-format files written by the tests themselves: no test ever downloads."""
    root = tmp_path_factory.mktemp("mnist")
    checksums = write_fake_mnist(root, train_size=1200, test_size=200)
    TEST_ARGS[:] = [
        f"--data.data_dir={root}",
        f"--data.checksums={json.dumps(checksums)}",
        "--data.batch_size=64",
        "--trainer.log_every_n_steps=5",
    ]
    return root
{%- endif %}
