"""Shared helpers: the configured DataModule on stand-in data, ``train.py`` runs, and what they wrote.

Nothing here knows which data or network the project has: sizes, class names and shapes come from the
DataModule named in ``configs/config.yaml``, on the small stand-in data its ``stand_in`` hook writes.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from {{ cookiecutter.package_name }}.lightning.module import ImageClassifier

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((PROJECT_ROOT / "configs" / "config.yaml").read_text(encoding="utf-8"))
# Extra train.py options for every test run: the stand-in data (set by the ``stand_in_data`` fixture).
TEST_ARGS: list[str] = []
# The init arguments that point the DataModule at the stand-in data.
STAND_IN: dict[str, object] = {}


def data_class() -> type:
    """The DataModule class that ``data.class_path`` in the config names."""
    module, _, name = CONFIG["data"]["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.fixture(scope="session", autouse=True)
def stand_in_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Stand-in data from the DataModule's ``stand_in`` hook, if it has one: no test needs the real data."""
    hook = getattr(data_class(), "stand_in", None)
    STAND_IN.update(hook(tmp_path_factory.mktemp("stand_in")) if hook else {})
    TEST_ARGS[:] = [
        f"--data.init_args.{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in STAND_IN.items()
    ]
    return STAND_IN


def make_datamodule(**overrides: object):
    """The configured DataModule on the stand-in data, set up for every stage."""
    arguments = {**CONFIG["data"].get("init_args", {}), **STAND_IN, **overrides}
    datamodule = data_class()(**arguments)
    datamodule.setup("fit")
    return datamodule


def make_model(datamodule, **overrides: object) -> ImageClassifier:
    """The configured LightningModule for ``datamodule``'s data, as the command line builds it."""
    contract = {name: getattr(datamodule, name) for name in ("input_shape", "class_names", "normalization")}
    return ImageClassifier(**contract, **{**CONFIG["model"], **overrides})


def batch_size_for(train_batches: int, val_batches: int = 1, processes: int = 1) -> int:
    """A batch size (at most the configured one) that gives each process at least ``train_batches`` training
    and ``val_batches`` validation batches, whatever the size of the data.
    """
    datamodule = make_datamodule()
    return max(
        1,
        min(
            datamodule.batch_size,
            len(datamodule.splits["train"]) // (train_batches * processes),
            len(datamodule.splits["val"]) // (val_batches * processes),
        ),
    )


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


def run_folders(log_dir: Path) -> list[Path]:
    """Every run folder under ``log_dir`` (each holds its resolved config.yaml), whatever the logger."""
    return sorted(config.parent for config in log_dir.rglob("config.yaml"))


def checkpointed_runs(log_dir: Path) -> list[Path]:
    """The run folders under ``log_dir`` that hold checkpoints, whatever the logger's layout."""
    return sorted(checkpoints.parent for checkpoints in log_dir.rglob("checkpoints"))


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint the safe way: tensors and plain containers only."""
    return torch.load(path, map_location="cpu", weights_only=True)


def best_checkpoint(run: Path) -> Path:
    """The best checkpoint of a run, as its ModelCheckpoint recorded it in ``last.ckpt``."""
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    # The ModelCheckpoint that monitors a metric is the one with a best score.
    (state,) = [s for s in last["callbacks"].values() if s.get("best_model_score") is not None]
    return Path(state["best_model_path"])


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 4-epoch fit through train.py, shared by the tests that inspect its output."""
    log_dir = tmp_path_factory.mktemp("logs")
    run_train("fit", "--trainer.max_epochs=4", "--trainer.log_every_n_steps=1", log_dir=log_dir)
    return log_dir
