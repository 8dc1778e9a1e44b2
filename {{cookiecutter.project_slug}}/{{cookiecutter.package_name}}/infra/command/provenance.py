"""Where a run came from: ``provenance.json`` in its run folder, and a summary of it in every checkpoint.

Each attempt at a run (its start, and each resume or requeue after it) appends one entry: the code (git
commit, branch, uncommitted changes saved beside it as ``uncommitted-<attempt>.patch``), the command line,
the checkpoint it started from, the software (Python, torch, CUDA, cuDNN, Lightning and every installed
distribution), the hardware, the host and SLURM job, and when it started and ended. Global rank 0 writes it
at the start and at the end of the run, each time whole (``faults/durable.py``), never during epochs.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from ..faults.durable import write_bytes, write_text
from .code_version import CodeVersion

FILE = "provenance.json"
SLURM = {"SLURM_JOB_ID": "job", "SLURM_ARRAY_JOB_ID": "array_job", "SLURM_ARRAY_TASK_ID": "array_task"}
SLURM |= {"SLURM_RESTART_COUNT": "restarts", "SLURM_JOB_NODELIST": "nodes"}


def now() -> str:
    """The local time with its UTC offset, to the millisecond."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def installed() -> dict[str, str]:
    """The version of every installed distribution, by name.

    Read from the header of each one's metadata file: parsing the whole file as ``metadata`` does (twice,
    for ``name`` and ``version``) took 40 ms for 140 distributions, this 5 ms.
    """
    packages: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        text = distribution.read_text("METADATA") or distribution.read_text("PKG-INFO") or ""
        header = dict(line.split(": ", 1) for line in text.split("\n\n", 1)[0].splitlines() if ": " in line)
        if "Name" in header and "Version" in header:
            packages.setdefault(header["Name"], header["Version"])  # the first on sys.path is imported
    return dict(sorted(packages.items(), key=lambda item: item[0].lower()))


def software() -> dict[str, Any]:
    """Python, the platform, torch with its CUDA and cuDNN, Lightning, and every installed distribution."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "pytorch_lightning": pl.__version__,
        "packages": installed(),
    }


def cpu_model() -> str:
    """The CPU's model name, as the system reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(trainer: pl.Trainer) -> dict[str, Any]:
    """The CPU and GPUs of this machine, and what the run uses of them."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "gpus": gpus,
        "accelerator": type(trainer.accelerator).__name__,
        "strategy": type(trainer.strategy).__name__,
        "devices": trainer.num_devices,
        "nodes": trainer.num_nodes,
        "world_size": trainer.world_size,
        "precision": trainer.precision,
    }


def host(trainer: pl.Trainer) -> dict[str, Any]:
    """The machine, the process, and the SLURM job and array task where there is one."""
    slurm = {name: os.environ[variable] for variable, name in SLURM.items() if variable in os.environ}
    process = {"pid": os.getpid(), "global_rank": trainer.global_rank}
    return {"hostname": socket.gethostname(), **process, "slurm": slurm or None}


def read_attempts(run: Path) -> list[dict[str, Any]]:
    """The attempts recorded in ``run``'s provenance.json (none if it has none)."""
    try:
        return json.loads((run / FILE).read_text(encoding="utf-8"))["attempts"]
    except FileNotFoundError:
        return []


def checkpoint_origin(path: str | Path, state: dict[str, Any]) -> dict[str, Any]:
    """What names a checkpoint and the run that made it: its file, epoch, step and provenance summary."""
    record = state.get("record") or {}
    return {
        "path": str(Path(path).resolve()),
        "epoch": state.get("epoch"),
        "global_step": state.get("global_step"),
        "provenance": record.get("provenance"),
    }


class Attempt:
    """One attempt at a run, written into its run folder's provenance.json by global rank 0.

    Args:
        subcommand: ``fit``, ``validate``, ``test`` or ``predict``.
        arguments: The options the run was parsed from (``sys.argv`` is the process's command line).
        code: The code's git state; None in processes other than rank 0, which write nothing.
        checkpoint: :func:`checkpoint_origin` of the checkpoint it starts from, if any.
    """

    def __init__(
        self, subcommand: str, arguments: list[str], code: CodeVersion | None, checkpoint: dict | None
    ) -> None:
        self.subcommand, self.arguments, self.code, self.checkpoint = subcommand, arguments, code, checkpoint
        self.run: Path | None = None
        self.entry: dict[str, Any] = {}

    def start(self, trainer: pl.Trainer, run: Path) -> dict[str, Any]:
        """Append this attempt to ``run``'s provenance.json; its summary, for checkpoints and loggers."""
        assert self.code is not None, "the command line finds the code's version on rank 0"
        self.run = run.resolve()
        attempts = read_attempts(self.run)
        continued = (self.checkpoint or {}).get("provenance") or {}
        if self.subcommand == "fit" and continued.get("run") not in (None, str(self.run)):
            # A resume that the logger starts in a new folder (CSV): the earlier attempts come along.
            attempts = [*read_attempts(Path(continued["run"])), *attempts]
        number = len(attempts) + 1
        code = {key: value for key, value in asdict(self.code).items() if key != "patch"}
        if self.code.patch:
            code["patch"] = f"uncommitted-{number}.patch"
            write_bytes(self.run / code["patch"], self.code.patch)
        self.entry = {
            "attempt": number,
            "run": str(self.run),
            "started": now(),
            "ended": None,
            "outcome": None,
            "subcommand": self.subcommand,
            "argv": sys.argv,
            "arguments": self.arguments,
            "cwd": os.getcwd(),
            "checkpoint": self.checkpoint,
            "code": code,
            "host": host(trainer),
            "hardware": hardware(trainer),
            "software": software(),
        }
        self._write([*attempts, self.entry])
        summary = {key: code[key] for key in ("commit", "branch", "dirty", "why")}
        return {"run": str(self.run), "attempt": number, **summary, "started": self.entry["started"]}

    def end(self, trainer: pl.Trainer, outcome: str) -> None:
        """Record how and when the attempt ended and, for fit, the epochs it completed and its step."""
        if self.run is None or self.entry["ended"] is not None:
            return
        self.entry.update(ended=now(), outcome=outcome)
        if self.subcommand == "fit":
            self.entry.update(epochs_completed=trainer.current_epoch, global_step=trainer.global_step)
        attempts = read_attempts(self.run)
        attempts[self.entry["attempt"] - 1] = self.entry
        self._write(attempts)

    def _write(self, attempts: list[dict[str, Any]]) -> None:
        assert self.run is not None
        text = json.dumps({"attempts": attempts}, indent=2, default=str) + "\n"
        write_text(self.run / FILE, text)
