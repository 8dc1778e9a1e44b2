"""Run identity: each run gets a folder of its own, and one process at a time writes it.

- A new TensorBoard or CSV run claims its ``version_N`` folder with ``mkdir``, which only one of several
  runs started together can win (the loggers only count the existing folders). MLflow and W&B run ids
  are unique already.
- The process that writes a run holds a lock on its ``run.lock`` file: a second writer, a resume included,
  is refused with one line naming the holder. The lock is ``flock``'s, which the kernel drops when the
  holder dies, so a killed run never blocks its own resume.
- ``run.lock`` also records the SLURM job, so that a requeued job resumes its own run (:func:`job_runs`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are still claimed, but not locked
    fcntl = None

LOCK_FILE = "run.lock"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID")  # torchrun, Lightning's DDP launcher, srun

_held: dict[Path, int] = {}  # run folder -> descriptor of its locked run.lock, while this process writes it
_claimed: list[Path] = []  # the folders this process created with claim_version
_made: list[Path] = []  # the folders above them that claim_version made, to remove again if left empty


def is_first_process() -> bool:
    """Whether this is global rank 0, read from the launchers' environment before DDP has started."""
    return all(int(os.environ.get(name, 0)) == 0 for name in RANK_VARIABLES)


def slurm_job() -> str | None:
    """The id of the SLURM job this process runs in (each array task has its own), if any."""
    return os.environ.get("SLURM_JOB_ID")


def will_make(folder: Path) -> None:
    """Note that this run is about to make ``folder``: removed again, with its parents, if left empty."""
    folder = folder.resolve()
    _made.extend(made for made in (folder, *folder.parents) if not made.exists() and made not in _made)


def claim_version(experiment: Path) -> int:
    """Create the next free ``version_N`` folder under ``experiment`` and return its N."""
    experiment = experiment.resolve()
    will_make(experiment)
    experiment.mkdir(parents=True, exist_ok=True)
    taken = [p.name.removeprefix("version_") for p in experiment.glob("version_*")]
    version = max((int(n) for n in taken if n.isdigit()), default=-1) + 1
    while True:
        try:
            (experiment / f"version_{version}").mkdir()
            _claimed.append((experiment / f"version_{version}").resolve())
            return version
        except FileExistsError:
            version += 1


def holder(run: Path) -> str:
    """Who last locked ``run`` (SLURM job, process, host), as recorded in its lock file."""
    try:
        return (run / LOCK_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def lock_run(run: Path) -> None:
    """Lock ``run`` for this process until :func:`release_runs`, or exit with one line if another holds it."""
    run = run.resolve()
    if run in _held:
        return
    run.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(run / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    if fcntl is not None:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            sys.exit(
                f"error: run folder {run} is in use by {holder(run) or 'another process'}:"
                " wait for that run to end, or start a new run (without --ckpt_path)"
            )
    record = f"pid {os.getpid()} on {socket.gethostname()}"
    if slurm_job():
        record = f"SLURM job {slurm_job()}, {record}"
    # The other ranks of a requeued job read the job from here (job_runs) while rank 0 locks the run again.
    # Written over the old record and then cut, never emptied first, and with the job ahead of the pid, so
    # that they read the job at every moment of the rewrite.
    data = f"{record}\n".encode()
    os.pwrite(descriptor, data, 0)
    os.ftruncate(descriptor, len(data))
    _held[run] = descriptor


def release_runs() -> None:
    """Unlock the runs this process holds, and remove the folders it claimed but never wrote to.

    A run that fails before it starts (a bad setting, missing data) so leaves nothing behind, not even the
    experiment folder made for it. The end of the process unlocks too; this is for several runs in one
    process.
    """
    while _held:
        os.close(_held.popitem()[1])
    while _claimed:
        folder = _claimed.pop()
        if [path.name for path in folder.iterdir()] == [LOCK_FILE]:
            (folder / LOCK_FILE).unlink()
            folder.rmdir()
    for folder in _made:  # deepest first
        remove_mlflow_scaffold(folder)
        with contextlib.suppress(OSError):  # not empty: another run uses it now
            folder.rmdir()
    _made.clear()


def remove_mlflow_scaffold(folder: Path) -> None:
    """Empty ``folder`` if it holds only what MLflow's file store makes when opened, before any run."""
    default = folder / "0"
    names = {path.name for path in folder.iterdir()} if folder.is_dir() else set()
    if (
        names == {".trash", "0"}
        and not any((folder / ".trash").iterdir())
        and [path.name for path in default.iterdir()] == ["meta.yaml"]
    ):
        (default / "meta.yaml").unlink()
        default.rmdir()
        (folder / ".trash").rmdir()


def job_runs(runs: list[Path], job: str) -> list[Path]:
    """Those of ``runs`` that SLURM job ``job`` wrote."""
    return [run for run in runs if holder(run).startswith(f"SLURM job {job}, ")]
