"""Read back what the W&B logger wrote offline: the records of the run's ``.wandb`` files."""

from __future__ import annotations

import json
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path

# Resuming with --ckpt_path last continues the same W&B run id (a new offline folder, synced as one run).
RESUME_CONTINUES_RUN = True
# W&B keeps every value logged: steps an interrupted run logged after its checkpoint appear twice.
REPLAYED_STEPS_DISCARDED = False

# A .wandb file is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of chunks, each with a 7-byte
# header (CRC32, length, type) and part of one serialised protobuf Record.
BLOCK_SIZE = 32 * 1024
HEADER_SIZE = 7
FULL, LAST = 1, 4


def run_folder(run_id: str) -> re.Pattern[str]:
    """The name of a folder W&B writes one process of run ``run_id`` (a regular expression) to.

    ``offline-run-<YYYYMMDD_HHMMSS>-<run id>``, and ``-<n>`` after it when that name is taken: a resume
    that starts in the same second as the run it continues.
    """
    # No braces: this file is included into a Jinja template.
    return re.compile(r"offline-run-\d+_\d+-(?P<id>" + run_id + r")(?:-\d+)?")


def run_id(folder: Path) -> str:
    """The run id of one of W&B's ``offline-run-...`` folders."""
    return run_folder(".+?").fullmatch(folder.name)["id"]


def records(path: Path) -> Iterator[bytes]:
    """The serialised records of one ``.wandb`` file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    position, pending = HEADER_SIZE, b""
    while position + HEADER_SIZE <= len(data):
        if BLOCK_SIZE - position % BLOCK_SIZE < HEADER_SIZE:  # the block's padding
            position += BLOCK_SIZE - position % BLOCK_SIZE
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER_SIZE])
        if kind == 0:
            break
        pending += data[position + HEADER_SIZE : position + HEADER_SIZE + length]
        position += HEADER_SIZE + length
        if kind in (FULL, LAST):
            yield pending
            pending = b""


def written(path: Path, settle: float = 2.0, timeout: float = 60.0) -> list[bytes]:
    """The records of ``path`` once W&B's service process has written them all.

    On a loaded machine ``wandb.finish()`` can return before the service has written the last records. A
    finished run's file ends with its ``exit`` record; a killed run never gets one, so a file that has stopped
    growing for ``settle`` seconds is taken as it is.
    """
    from wandb.proto.wandb_internal_pb2 import Record

    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while True:
        raws = list(records(path))
        if raws and Record.FromString(raws[-1]).WhichOneof("record_type") == "exit":
            return raws
        now, current = time.monotonic(), path.stat().st_size
        if current != size:
            size, since = current, now
        elif now - since >= settle or now >= deadline:
            return raws
        time.sleep(0.1)


def run_files(run_dir: Path) -> list[Path]:
    """The ``.wandb`` files of one run, oldest first: one per process that wrote the run.

    ``run_dir`` is ``<save_dir>/<project>/<run id>`` (the folder with ``checkpoints/``); W&B keeps the run
    itself in ``<save_dir>/wandb/offline-run-<time>-<run id>/`` (``run_folder``), one folder per process.
    """
    named = run_folder(re.escape(run_dir.name))
    folders = [f for f in sorted(run_dir.parents[1].glob("wandb/offline-run-*")) if named.fullmatch(f.name)]
    return [path for folder in folders for path in sorted(folder.glob("run-*.wandb"))]


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All metrics of one run (``run_files``), as ``{name: [(global step, value), ...]}`` ordered by step."""
    from wandb.proto.wandb_internal_pb2 import Record

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in run_files(run_dir):
        for raw in written(path):
            record = Record.FromString(raw)
            if record.WhichOneof("record_type") != "history":
                continue
            history = record.history.item
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in history}
            step = int(items.pop("trainer/global_step", items["_step"]))
            for name, value in items.items():
                if not name.startswith("_") and isinstance(value, int | float):
                    scalars.setdefault(name, []).append((step, float(value)))
    return {name: sorted(points) for name, points in scalars.items()}


def read_commit(run_dir: Path) -> str:
    """The git commit of the run's latest attempt, from the config updates in its ``.wandb`` files."""
    from wandb.proto.wandb_internal_pb2 import Record

    commits = []
    for path in run_files(run_dir):
        for raw in written(path):
            record = Record.FromString(raw)
            if record.WhichOneof("record_type") == "config":
                updates = record.config.update
                commits += [json.loads(item.value_json) for item in updates if item.key == "git_commit"]
    return commits[-1]
