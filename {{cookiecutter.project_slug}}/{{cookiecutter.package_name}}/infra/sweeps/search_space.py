"""The search space of ``sweep.py``: ``configs/sweep.yaml`` read, checked, and turned into train.py options.

Each entry of ``params`` names a config key, as on the command line without its ``--``, and what to try:

- ``{low, high}``: a float, or an integer when both bounds are integers; ``log: true`` samples the
  logarithm uniformly, ``step`` gives a grid;
- ``{choices: [...]}``: one of the listed values (numbers, strings, booleans, lists).

Mistakes (an unknown key, an empty range, a misspelled field) exit with one line before any trial runs.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import optuna
import yaml

RANGE_FIELDS = {"low", "high", "log", "step"}


def fail(message: str) -> None:
    """Exit with one line, as every mistake of the user does."""
    sys.exit(f"error: {message}")


def read_sweep(path: Path) -> dict[str, Any]:
    """``configs/sweep.yaml`` (or ``path``) as a dict, its fields and search space checked."""
    if not path.is_file():
        fail(f"sweep config {path}: no such file")
    sweep = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    required = {"name", "metric", "direction", "trials", "seed", "params"}
    if missing := sorted(required - sweep.keys()):
        fail(f"sweep config {path}: {', '.join(missing)} missing")
    if unknown := sorted(sweep.keys() - required - {"pruner", "args"}):
        fail(f"sweep config {path}: unknown field {', '.join(unknown)}")
    if sweep["direction"] not in ("minimize", "maximize"):
        fail(f"sweep config {path}: direction {sweep['direction']!r} is neither minimize nor maximize")
    for field in ("trials", "seed"):
        if not isinstance(sweep[field], int) or isinstance(sweep[field], bool) or sweep[field] < 0:
            fail(f"sweep config {path}: {field} must be a whole number, got {sweep[field]!r}")
    if not isinstance(sweep.get("args", []), list):
        fail(f"sweep config {path}: args must be a list of train.py options, one per line")
    if not isinstance(sweep["params"], dict) or not sweep["params"]:
        fail(f"sweep config {path}: params is empty: name at least one config key to search")
    for key, spec in sweep["params"].items():
        check_param(key, spec)
    return sweep


def check_param(key: str, spec: object) -> None:
    """Exit with one line if ``spec`` does not describe a non-empty set of values."""
    where = f"search space {key}"
    if not isinstance(spec, dict):
        fail(f"{where}: expected a mapping with low and high, or with choices; got {spec!r}")
    if "choices" in spec:
        if set(spec) != {"choices"}:
            fail(f"{where}: choices cannot be combined with {', '.join(sorted(set(spec) - {'choices'}))}")
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            fail(f"{where}: choices is empty")
        return
    if unknown := sorted(set(spec) - RANGE_FIELDS):
        fail(f"{where}: unknown field {', '.join(unknown)} (expected low, high, log, step or choices)")
    if not {"low", "high"} <= spec.keys():
        fail(f"{where}: needs both low and high, or choices")
    low, high = spec["low"], spec["high"]
    if not all(isinstance(bound, int | float) and not isinstance(bound, bool) for bound in (low, high)):
        fail(f"{where}: low and high must be numbers, got {low!r} and {high!r}")
    if low >= high:
        fail(f"{where}: empty range, low {low} is not below high {high}")
    if spec.get("log") and low <= 0:
        fail(f"{where}: a log range needs low > 0, got {low}")
    if spec.get("log") and spec.get("step"):
        fail(f"{where}: log and step cannot be combined")


def check_keys(params: dict[str, Any], resolved: dict[str, Any]) -> None:
    """Exit with one line if a key of the search space is not a key of the resolved train.py config."""
    for key in params:
        node: object = resolved
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                fail(f"search space {key}: not a key of the configuration (`python train.py --print_config`)")
            node = node[part]


def suggest(trial: optuna.Trial, params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Sample one value per key of the search space (an enqueued re-run gets its earlier values back)."""
    values = {}
    for key, spec in params.items():
        if "choices" in spec:
            # Optuna stores choices as JSON-like scalars: lists are passed as their JSON text.
            choices = [json.dumps(c) if isinstance(c, list | dict) else c for c in spec["choices"]]
            value = trial.suggest_categorical(key, choices)
            values[key] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            step = spec.get("step") or 1
            values[key] = trial.suggest_int(
                key, spec["low"], spec["high"], step=step, log=bool(spec.get("log"))
            )
        else:
            values[key] = trial.suggest_float(
                key, spec["low"], spec["high"], step=spec.get("step"), log=bool(spec.get("log"))
            )
    return values


def as_options(values: dict[str, Any]) -> list[str]:
    """Sampled values as train.py options, e.g. ``--model.lr=0.001``."""
    return [
        f"--{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in values.items()
    ]


def make_pruner(spec: dict[str, Any] | None) -> optuna.pruners.BasePruner:
    """The pruner sweep.yaml names (``class_path`` and ``init_args``, as in config.yaml); none if absent."""
    if not spec:
        return optuna.pruners.NopPruner()
    module, _, name = str(spec.get("class_path")).rpartition(".")
    try:
        pruner = getattr(importlib.import_module(module), name)(**(spec.get("init_args") or {}))
    except (ImportError, AttributeError, TypeError, ValueError) as error:
        fail(f"pruner {spec.get('class_path')}: {error}")
    if not isinstance(pruner, optuna.pruners.BasePruner):
        fail(f"pruner {spec.get('class_path')}: not an Optuna pruner (see optuna.pruners)")
    return pruner
