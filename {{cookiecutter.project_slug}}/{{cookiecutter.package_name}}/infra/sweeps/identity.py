"""What a study and its trials are, so that nothing of another study is mixed into them.

- A study records the search space, metric and direction it was started with (an Optuna user attribute)
  and an id of its own; a ``sweep.yaml`` that asks for another space or metric is refused in one line naming
  the difference, rather than mixing trials of two searches in one ranking.
- Each trial's run folder holds ``trial.yaml`` from the trial's start: the study's id, the trial's number and
  parameters. A run folder of another study (left by a study whose journal was deleted) is neither written
  to nor resumed from.
- A journal whose last line a killed worker left half-written is mended before it is read.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.storages.journal import JournalFileSymlinkLock

from ..faults.durable import write_text
from .search_space import fail

SEARCH = "search"  # the study's user attribute: the space, metric and direction it was started with
STUDY_ID = "study_id"  # the study's user attribute: its own id, written into its trials' folders
MARKER = "trial.yaml"


def plain(value: Any) -> Any:
    """``value`` as JSON holds it (tuples as lists), so that YAML and Optuna's storage compare alike."""
    return json.loads(json.dumps(value))


def difference(started: dict[str, Any], asked: dict[str, Any]) -> tuple[str, str] | None:
    """How the search ``asked`` now differs from the one the study ``started`` with, said for each side."""
    for field in ("metric", "direction"):
        if started[field] != asked[field]:
            return f"{field} {started[field]}", f"{field} {asked[field]}"
    for key in sorted(started["params"].keys() | asked["params"].keys()):
        before, now = started["params"].get(key), asked["params"].get(key)
        if before != now:
            return (
                f"{key} {json.dumps(before)}" if before is not None else f"no {key}",
                f"{key} {json.dumps(now)}" if now is not None else f"no {key}",
            )
    return None


def study_id(study: optuna.Study, sweep: dict[str, Any], source: Path) -> str:
    """The study's id; a new study records what it searches, an existing one must search the same.

    Call it while holding the study's ask lock, so that workers starting together record it once.
    """
    asked = plain({"metric": sweep["metric"], "direction": sweep["direction"], "params": sweep["params"]})
    if SEARCH not in study.user_attrs:
        study.set_user_attr(SEARCH, asked)
        study.set_user_attr(STUDY_ID, uuid.uuid4().hex)
    elif changed := difference(study.user_attrs[SEARCH], asked):
        fail(
            f"study {study.study_name} was started with {changed[0]}, and {source} now has {changed[1]}:"
            " continue it with the search it started with, or start another study with --name"
        )
    return study.user_attrs[STUDY_ID]


def mark_trial(folder: Path, record: dict[str, Any]) -> None:
    """Write ``trial.yaml`` into a trial's run folder: which study and trial the folder belongs to."""
    write_text(folder / MARKER, yaml.safe_dump(record, sort_keys=False))


def owner(folder: Path) -> dict[str, Any] | None:
    """The study id and trial number a trial's run folder belongs to, if it holds a ``trial.yaml``."""
    try:
        record = yaml.safe_load((folder / MARKER).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    return {"study_id": record.get("study_id"), "trial": record.get("trial")}


def check_free(folder: Path, uid: str, number: int) -> None:
    """Exit with one line if ``folder``, where trial ``number`` is to run, holds another study's run."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if owner(folder) != {"study_id": uid, "trial": number}:
        fail(
            f"run folder {folder} holds a run of another study (was its journal deleted?), not of trial"
            f" {number} of this one: move the old trial folders away, or start this study under another"
            " name with --name"
        )


def mend_journal(path: Path) -> None:
    """Drop a half-written last line (a worker killed mid-append), which would make the journal unreadable.

    Under Optuna's own lock on the journal, so that no append is cut short by the mending.
    """
    if not path.is_file():
        return
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        with open(path, "rb+") as file:
            data = file.read()
            end = len(data)
            while end and not complete(data[data.rfind(b"\n", 0, end - 1) + 1 : end]):
                end = data.rfind(b"\n", 0, end - 1) + 1
            if end < len(data):
                file.truncate(end)
                print(f"study journal {path}: dropped a half-written last entry (a worker killed mid-write)")
    finally:
        lock.release()


def complete(line: bytes) -> bool:
    """Whether ``line`` is a whole journal entry: one JSON object and its newline."""
    if not line.endswith(b"\n"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
