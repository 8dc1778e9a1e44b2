"""Shared helpers: the configured DataModule and model on stand-in data, ``train.py`` runs, what they wrote.

Nothing here knows which task, data or network the project has: classes, sizes and the monitored metric
come from ``configs/config.yaml`` and the DataModule it names, on the small stand-in data its ``stand_in``
hook writes (the configured data itself where it has none). ``train.py`` runs in this process (``cli``)
wherever a separate one proves nothing: each new process pays the import of torch and Lightning again,
several seconds. Signals, kills and several processes need one (``run_train``; ``infra/ddp.py`` for DDP),
forked by ``infra/processes.py`` from a process that has paid that import once.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import probes
import processes
import pytest
import pytorch_lightning as pl
import torch
import yaml

from {{ cookiecutter.package_name }}.infra.command.cli import main, one_of_several_runs
from {{ cookiecutter.package_name }}.infra.command.linking import constructor_parameters, data_args

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((PROJECT_ROOT / "configs" / "config.yaml").read_text(encoding="utf-8"))
# The metric that picks the best checkpoint, and whether lower ("min") or higher ("max") is better.
MONITOR, MODE = next(
    (callback["init_args"]["monitor"], callback["init_args"].get("mode", "min"))
    for callback in CONFIG["trainer"]["callbacks"]
    if (callback.get("init_args") or {}).get("monitor")
)
# The environment that lets a run's command line name the faults and probes of tests/infra/probes.py.
PROBES_ENV = {"PYTHONPATH": os.pathsep.join(str(PROJECT_ROOT / "tests" / name) for name in ("", "infra"))}
# Extra train.py options for every test run: the stand-in data (set by the ``stand_in_data`` fixture).
TEST_ARGS: list[str] = []
# The init arguments that point the DataModule at the stand-in data.
STAND_IN: dict[str, object] = {}
{%- if cookiecutter.logger in ["mlflow", "wandb"] %}
# The logger's library takes seconds to import: the fork server imports it once, not every run it starts.
processes.PRELOAD.append("{{ cookiecutter.logger }}")
{%- endif %}

# Under pytest-xdist, each worker's torch gets its share of the cores: torch's threads spin while they wait
# for work, so workers that each use every core run several times slower than one. The processes the
# tests start inherit it.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // WORKERS))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def configured_class(section: str) -> type:
    """The class that ``<section>.class_path`` in the config names (``model`` or ``data``)."""
    module, _, name = CONFIG[section]["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)


def better(value: float, than: float) -> bool:
    """Whether ``value`` of the monitored metric is better than ``than``."""
    return value < than if MODE == "min" else value > than


@pytest.fixture(scope="session", autouse=True)
def stand_in_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Stand-in data from the DataModule's ``stand_in`` hook, if it has one: no test needs the real data."""
    hook = getattr(configured_class("data"), "stand_in", None)
    STAND_IN.update(hook(tmp_path_factory.mktemp("stand_in")) if hook else {})
    TEST_ARGS[:] = [
        f"--data.init_args.{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in STAND_IN.items()
    ]
    return STAND_IN


def make_datamodule(**overrides: object) -> pl.LightningDataModule:
    """The configured DataModule on the stand-in data, set up for fitting."""
    arguments = {**CONFIG["data"].get("init_args", {}), **STAND_IN, **overrides}
    datamodule = configured_class("data")(**arguments)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def make_model(datamodule: pl.LightningDataModule, **overrides: object) -> pl.LightningModule:
    """The configured LightningModule for ``datamodule``'s data, as the command line builds it."""
    taken = constructor_parameters(CONFIG["model"]["class_path"])
    given = {key: value for key, value in data_args(datamodule).items() if key in taken}
    return configured_class("model")(**{**CONFIG["model"].get("init_args", {}), **given, **overrides})


def require_resumable_loader() -> None:
    """Skip, saying why, unless the configured training loader can resume mid-epoch."""
    loader = make_datamodule().train_dataloader()
    if not all(callable(getattr(loader, name, None)) for name in ("state_dict", "load_state_dict")):
        pytest.skip(
            f"a {type(loader).__name__} cannot resume mid-epoch: a ResumableDataLoader"
            " (infra/faults/resumable_loader.py) can"
        )


def batch_size_for(train_batches: int, val_batches: int = 1, processes: int = 1) -> int:
    """A batch size (at most the configured one) that gives each process at least ``train_batches`` training
    and ``val_batches`` validation batches, whatever the size of the data.
    """
    datamodule = make_datamodule()
    sizes = [len(datamodule.train_dataloader().dataset), len(datamodule.val_dataloader().dataset)]
    configured = CONFIG["data"].get("init_args", {}).get("batch_size", sizes[0])
    per_process = (sizes[0] // (train_batches * processes), sizes[1] // (val_batches * processes))
    return max(1, min(configured, *per_process))


def command_line(args: tuple[str, ...], log_dir: Path) -> list[str]:
    """``args`` with what every test run adds: stand-in data, logs under ``log_dir``, no progress output.

    The additions come right after the subcommand, so that the test's own options override them.
    """
    subcommand, *rest = args
    return [
        subcommand,
        *TEST_ARGS,
        f"--trainer.logger.init_args.save_dir={log_dir}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        # Stand-in data has few batches an epoch: log each step, so every run draws curves.
        "--trainer.log_every_n_steps=1",
        *rest,
    ]


def run_in_process(args: list[str]) -> int:
    """Run ``train.py <args>`` in this process; the exit status it would have had."""
    argv, sys.argv = sys.argv, [str(PROJECT_ROOT / "train.py")]  # pytest's own arguments are not for it
    status: int | str | None = 0
    try:
        with one_of_several_runs():
            main(args)
    except SystemExit as exit:
        status = exit.code
    finally:
        sys.argv = argv
    if isinstance(status, str):  # what the interpreter prints for sys.exit("message"), and its status
        print(status, file=sys.stderr)
        return 1
    return status or 0


@dataclass
class Result:
    """What a ``train.py`` run returned and printed."""

    returncode: int
    stdout: str
    stderr: str


def assert_succeeded(args: tuple[str, ...], result: Result) -> None:
    """Fail the test with the output of ``train.py <args>`` unless it succeeded."""
    assert result.returncode == 0, f"train.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture
def cli(capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """``cli(*args, log_dir=..., check=True, cwd=PROJECT_ROOT)``: ``train.py <args>`` in this process."""

    def run(*args: str, log_dir: Path, check: bool = True, cwd: Path = PROJECT_ROOT) -> Result:
        monkeypatch.chdir(cwd)
        # Lightning's log handlers keep the stream they found at import; point them at the captured one.
        for name in ("pytorch_lightning", "lightning_fabric"):
            for handler in logging.getLogger(name).handlers:
                if type(handler) is logging.StreamHandler:
                    monkeypatch.setattr(handler, "stream", sys.stderr)
        capfd.readouterr()
        returncode = run_in_process(command_line(args, log_dir))
        result = Result(returncode, *capfd.readouterr())
        if check:
            assert_succeeded(args, result)
        return result

    return run


def run_train(
    *args: str,
    log_dir: Path,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 1200,
    project: Path = PROJECT_ROOT,
) -> Result:
    """Run ``python train.py <args>`` as a process of its own, with logs and checkpoints under ``log_dir``.

    With ``check`` (the default) the run must succeed; without, the caller inspects the failure. ``env``
    adds environment variables; ``project`` is the folder whose train.py (and code) runs.
    """
    process = processes.start(project / "train.py", command_line(args, log_dir), project, env)
    result = Result(process.wait(timeout), *process.communicate())
    if check:
        assert_succeeded(args, result)
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


def logged_steps(scalars: dict[str, list[tuple[int, float]]]) -> list[int]:
    """The steps at which the metric logged most often was logged: every training step, with the tests'
    ``log_every_n_steps=1``, for a metric the module logs in ``training_step`` (its loss, say). Lightning's
    own ``epoch`` counter, logged with every other metric too, is left out.
    """
    return [step for step, _ in max((v for tag, v in scalars.items() if tag != "epoch"), key=len)]


def assert_same_end(run_dir: Path, reference: Path) -> None:
    """The last checkpoints of two 3-epoch runs: both at the end, with the same weights up to float rounding.

    Same seed, deterministic CPU kernels, restored random generators and data order: a resumed run ends
    where the uninterrupted one does.
    """
    resumed, expected = (load_checkpoint(run / "checkpoints" / "last.ckpt") for run in (run_dir, reference))
    assert resumed["epoch"] == expected["epoch"] == 2
    for name, weight in expected["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], weight, rtol=0, atol=1e-6)


def best_checkpoint(run: Path) -> Path:
    """The best checkpoint of a run, as its ModelCheckpoint recorded it in ``last.ckpt``."""
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    # The ModelCheckpoint that monitors a metric is the one with a best score.
    (state,) = [s for s in last["callbacks"].values() if s.get("best_model_score") is not None]
    return Path(state["best_model_path"])


def load_module(path: Path) -> pl.LightningModule:
    """The LightningModule of a checkpoint, rebuilt from its own hyperparameters, in eval mode."""
    checkpoint = load_checkpoint(path)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    module = configured_class("model")(**hparams)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 4-epoch fit through train.py, shared by the tests that inspect its output; the training
    losses of its steps are in ``losses.json`` beside the logs.
    """
    log_dir = tmp_path_factory.mktemp("logs")
    args = ("fit", "--trainer.max_epochs=4", *probes.option("RecordLosses", path=log_dir / "losses.json"))
    assert run_in_process(command_line(args, log_dir)) == 0
    return log_dir


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``on_path(name, body="")``: a shell script ``name`` found first on PATH, standing in for a command."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    def put(name: str, body: str = "") -> Path:
        command = folder / name
        command.write_text(f"#!/bin/sh\n{body}", encoding="utf-8")
        command.chmod(0o755)
        return command

    return put


@pytest.fixture
def scontrol(tmp_path: Path, on_path) -> Path:
    """A stand-in for SLURM's ``scontrol``; returns the file where it writes its arguments."""
    called = tmp_path / "scontrol-called"
    on_path("scontrol", f'echo "$@" > {called}\n')
    return called
