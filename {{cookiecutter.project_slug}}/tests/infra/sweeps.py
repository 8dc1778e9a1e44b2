"""What the sweep tests share: the study's settings, tiny trials, and reading back what the trials wrote."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import processes
import yaml
from conftest import PROBES_ENV, PROJECT_ROOT, TEST_ARGS
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

SWEEP = yaml.safe_load((PROJECT_ROOT / "configs" / "sweep.yaml").read_text(encoding="utf-8"))
KEY = next(iter(SWEEP["params"]))  # a key of the search space
# Tiny trials: a few batches, every step logged, one line per trial.
TINY = (
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=3",
    "--trainer.limit_val_batches=2",
    "--trainer.log_every_n_steps=1",
)


def sweep_args(log_dir: Path, *args: str) -> list[str]:
    """``args`` with the stand-in data, runs under ``log_dir`` and tiny trials (the test's options win)."""
    return [*TEST_ARGS, f"--trainer.logger.init_args.save_dir={log_dir}", *TINY, *args]


def sweep_config(folder: Path, **changes: object) -> Path:
    """configs/sweep.yaml with ``changes``, written into ``folder``."""
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({**SWEEP, **changes}), encoding="utf-8")
    return path


def study(log_dir: Path, name: str = SWEEP["name"]) -> optuna.Study:
    """The study that the sweeps under ``log_dir`` share, read from its journal file."""
    storage = JournalStorage(JournalFileBackend(str(log_dir / f"{name}.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def started(log_dir: Path) -> bool:
    """Whether a worker has started a trial of the study in ``log_dir``."""
    try:
        return bool(study(log_dir).trials)
    except KeyError:  # no study yet
        return False


def trial_lines(output: str) -> dict[int, str]:
    """The one line of each finished trial, by trial number (a number printed twice fails)."""
    lines = re.findall(r"^trial (\d+) (COMPLETE|PRUNED|FAIL) .*$", output, re.M)
    numbers = [int(number) for number, _ in lines]
    assert len(numbers) == len(set(numbers)), output
    return {int(n): state for n, state in lines}


def records(log_dir: Path) -> list[dict]:
    """The trial.yaml of every finished trial's run folder (a trial's starts as a RUNNING one)."""
    found = [{**yaml.safe_load(path.read_text()), "run": path.parent} for path in log_dir.rglob("trial.yaml")]
    return [record for record in found if record["state"] != "RUNNING"]


def best_value(scalars: dict, metric: str) -> float:
    """The best value ``metric`` reached in a run's logged ``scalars``, in the study's direction."""
    values = [value for _, value in scalars[metric]]
    return max(values) if SWEEP["direction"] == "maximize" else min(values)


def start_sweep(log_dir: Path, *args: str) -> processes.Process:
    """``python sweep.py <args>`` as a worker of its own (``sweep_args``), which tests may stop or kill."""
    return processes.start(PROJECT_ROOT / "sweep.py", sweep_args(log_dir, *args), PROJECT_ROOT, PROBES_ENV)


def assert_trials_each_once(log_dir: Path, count: int) -> None:
    """The study has ``count`` finished trials and none left running; each finished one has its trial.yaml."""
    trials = study(log_dir).get_trials()
    done = [trial for trial in trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == count and not [trial for trial in trials if trial.state == TrialState.RUNNING]
    finished = {record["trial"]: record for record in records(log_dir)}
    assert sorted(finished) == sorted(trial.number for trial in done)


def readme_commands() -> list[str]:
    """The commands of the README's "Search hyperparameters" section."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Search hyperparameters", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]
