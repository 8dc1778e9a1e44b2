"""What ``sweep.py`` tells: a line and a ``trial.yaml`` per trial, the best trials, the best config."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from ..command.output import format_value
from ..faults.durable import write_text
from .identity import mark_trial
from .study import RERUN_OF, RUN

TOP = 5  # trials in the closing table
# Trainer settings that say where a run ran, not what it learned: the best config keeps the project's.
HARDWARE = ("accelerator", "devices", "strategy", "num_nodes", "precision")


def format_values(values: dict[str, Any]) -> str:
    """``key=value`` pairs, numbers with four significant digits."""
    return " ".join(f"{key}={format_value(value)}" for key, value in values.items())


def trial_record(
    trial: optuna.Trial, study_id: str, state: str, value: float | None, values: dict, why: str
) -> dict:
    """What a trial is: study, number, state, value, parameters, and why it stopped."""
    return {
        "study": trial.study.study_name,
        "study_id": study_id,
        "trial": trial.number,
        "state": state,
        "value": None if value is None or math.isnan(value) else value,
        "params": values,
        "stopped": why,
    }


def report_trial(record: dict, metric: str, run: Path | None, seconds: float) -> None:
    """Write ``record`` as ``trial.yaml`` in the trial's run folder, and print it as one line."""
    if run is not None:
        mark_trial(run, record)
    value = "-" if record["value"] is None else f"{record['value']:.4f}"
    why = "" if record["state"] == "COMPLETE" else f"  ({record['stopped']})"
    line = f"trial {record['trial']} {record['state']} {metric} {value}  {format_values(record['params'])}"
    print(f"{line}  {seconds:.1f} s  {run}{why}", flush=True)


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """The completed trials, best first."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(complete, key=lambda trial: trial.value, reverse=maximize)


def print_summary(study: optuna.Study, metric: str, target: int) -> None:
    """How many trials ended how, and a table of the best ones."""
    trials = study.get_trials(deepcopy=False)
    # A failed trial queued again (interrupted, or stopped by missing data) is not a result of its values.
    rerun = {trial.user_attrs[RERUN_OF] for trial in trials if RERUN_OF in trial.user_attrs}
    states = ["interrupted" if t.number in rerun else t.state.name.lower() for t in trials]
    order = ["complete", "pruned", "fail", "interrupted", "running", "waiting"]
    counts = ", ".join(f"{states.count(state)} {state}" for state in order if states.count(state))
    print(f"\nstudy {study.study_name}: {counts} ({target} wanted)")
    best = ranked(study)[:TOP]
    if not best:
        return
    keys = list(best[0].params)
    rows = [["trial", metric, *keys, "run"]]
    rows += [
        [
            str(t.number),
            f"{t.value:.4f}",
            *(format_value(t.params[k]) for k in keys),
            t.user_attrs.get(RUN, ""),
        ]
        for t in best
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def write_best_config(
    study: optuna.Study, path: Path, base: tuple[dict[str, Any], dict[str, Any]], naming: tuple[str, str]
) -> Path | None:
    """The best trial's resolved config.yaml, as a file ``python train.py --config`` reproduces it with.

    ``base`` is the configured logger's arguments and the project's own ``trainer:`` section. The logger
    gets back the configured experiment and run names, so that the reproduction is a new run of the
    project's experiment rather than a second writer of the trial's run folder; the hardware settings get
    back the project's (``auto``, or a precision chosen at start-up), not the one device a trial ran on.
    None without a completed trial.
    """
    best = ranked(study)
    if not best:
        return None
    config = yaml.safe_load((Path(best[0].user_attrs[RUN]) / "config.yaml").read_text(encoding="utf-8"))
    base_logger, base_trainer = base
    arguments = config["trainer"]["logger"]["init_args"]
    for key in naming:
        arguments[key] = base_logger.get(key)
    for key in HARDWARE:
        config["trainer"][key] = base_trainer.get(key)
    write_text(
        path,
        f"# trial {best[0].number} of study {study.study_name}\n" + yaml.safe_dump(config, sort_keys=False),
    )
    return path
