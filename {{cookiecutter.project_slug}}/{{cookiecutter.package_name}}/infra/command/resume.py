"""What ``--ckpt_path last|best`` means, and which run folder a run writes: the one it resumes, or a new one.

``last`` and ``best`` are the checkpoints of the project's newest run, except in a requeued SLURM job,
which resumes its own run (found by the job id in its ``run.lock``). Shared by ``train.py`` and
``export.py``, so that both mean the same file.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from .claims import claim_version, job_runs, lock_run, will_make
from .runs import (
    checkpointed_runs,
    claimed_runs,
    continue_run,
    experiment_root,
    logger_kind,
)


def best_checkpoint(last: Path) -> Path:
    """The best checkpoint recorded by ModelCheckpoint in the state saved with ``last``.

    If ``last`` cannot be read (a copy cut short, a damaged disk), the one other checkpoint beside it is the
    best (a line says so); with none or several, one line says to name one.
    """
    try:
        state = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # whatever it is, it cannot say which checkpoint is best
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        others = sorted(path for path in last.parent.glob("*.ckpt") if path != last)
        if len(others) != 1:
            listed = ", ".join(path.name for path in others) or "none"
            sys.exit(
                f"error: --ckpt_path best: {last}, which records the best checkpoint, cannot be read"
                f" ({reason}); the other checkpoints there ({listed}): give one with --ckpt_path"
            )
        rank_zero_info(f"{last} cannot be read ({reason}): the best is {others[0].name}, the one other there")
        return others[0]
    for key, callback_state in state.get("callbacks", {}).items():
        # The checkpoint callback that monitors a metric is the one with a score.
        if key.startswith("ModelCheckpoint") and callback_state.get("best_model_score") is not None:
            # Recorded relative to the directory the run was started from: found beside ``last`` instead.
            return last.parent / Path(callback_state["best_model_path"]).name
    sys.exit(f"error: --ckpt_path best: {last} records no best checkpoint")


def resolve_checkpoint(
    which: str, logger_config, default_root_dir: str | None = None, job: str | None = None
) -> Path:
    """The ``last`` or ``best`` checkpoint of the newest run of the configured logger that has one.

    Shared by ``train.py`` and ``export.py``, so that both mean the same file. With ``job``, only the
    runs of that SLURM job count.
    """
    runs = checkpointed_runs(logger_config, default_root_dir)
    if job is not None:
        runs = job_runs(runs, job)
    if not runs:
        where = experiment_root(logger_config, default_root_dir)
        sys.exit(f"error: --ckpt_path {which}: no run with checkpoints in {where}")
    last = runs[-1] / "checkpoints" / "last.ckpt"
    return last if which == "last" else best_checkpoint(last)


# Longer than this, an event file dated after now means a clock changed, not a run started this second.
MAX_CLOCK_WAIT_S = 2.0


def requeued_job() -> str | None:
    """The SLURM job id, in an attempt after the first (after a requeue): its own run is the one to resume."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    return os.environ.get("SLURM_JOB_ID") if restarts > 0 else None


def find_checkpoint(config, reuse_run: bool) -> Path | None:
    """Turn ``ckpt_path: last|best`` into the checkpoint file of the newest run that has one.

    A requeued SLURM job fits on from its own newest run, whatever other jobs wrote since, or from scratch
    if it had no checkpoint yet. With ``reuse_run`` (for ``fit``) the logger also continues that run where
    it can (see ``runs.py``), so a resumed run extends the same curves and keeps writing checkpoints where
    ``last`` finds them again. Returns the run folder it continues, if it does.
    """
    logger, root = config.trainer.logger, config.trainer.default_root_dir
    job = requeued_job() if reuse_run else None
    if job is not None and not job_runs(checkpointed_runs(logger, root), job):
        rank_zero_info(f"SLURM job {job} was requeued before its first checkpoint: it starts from scratch")
        config.ckpt_path = None
        # In the folder its first attempt claimed, where the logger can drop what that attempt logged;
        # the other loggers start a run of their own, as their resumes do.
        started = job_runs(claimed_runs(logger, root), job)
        if started and discards_replayed_steps(logger) and continue_run(logger, started[-1]):
            discard_logs_after(0, logger, started[-1])
            return started[-1]
        return None
    checkpoint = resolve_checkpoint(config.ckpt_path, logger, root, job)
    config.ckpt_path = str(checkpoint)
    if reuse_run and continue_run(logger, checkpoint.parents[1]):
        return checkpoint.parents[1]
    return None


def claim_run(config, continued: Path | None) -> None:
    """Lock the run folder this run writes, after claiming a new one where the logger numbers them.

    MLflow and W&B name a new run after instantiation: ``SaveRunConfig`` locks theirs. MLflow's logger opens
    its file store when it is made, so a run that fails before it starts leaves the store it made behind
    unless noted here.
    """
    logger = config.trainer.logger
    if continued is not None:
        lock_run(continued)
    elif getattr(logger, "class_path", None) and logger_kind(logger) == "MLFlowLogger":
        will_make(experiment_root(logger, config.trainer.default_root_dir))
    elif getattr(logger, "class_path", None) and logger_kind(logger) in ("TensorBoardLogger", "CSVLogger"):
        experiment = experiment_root(logger, config.trainer.default_root_dir)
        version = logger.init_args.get("version")
        try:
            if version is None:
                version = logger.init_args.version = claim_version(experiment)
                # The claimed folder holds run.lock, which CSVLogger would mistake for an older run's logs.
                warnings.filterwarnings("ignore", "Experiment logs directory .* exists and is not empty")
            lock_run(experiment / (version if isinstance(version, str) else f"version_{version}"))
        except OSError as error:
            sys.exit(
                f"error: cannot write run folders in {experiment} ({error.strerror}): make it writable, or"
                " set trainer.logger.init_args.save_dir"
            )


def discards_replayed_steps(logger_config) -> bool:
    """Whether the logger can drop steps an interrupted run logged (TensorBoard's restart marker)."""
    return logger_kind(logger_config) == "TensorBoardLogger"


def discard_logs_after(global_step: int, logger_config, run_dir: Path) -> None:
    """Make TensorBoard drop what the run in ``run_dir`` logged after the checkpoint of ``global_step``.

    A run killed mid-epoch has logged steps that the resumed run logs again. ``purge_step`` writes a
    restart marker at the checkpoint's step: TensorBoard (and its EventAccumulator) then discards the older
    events from that step on, so every step appears once.
    """
    if discards_replayed_steps(logger_config):
        logger_config.init_args.purge_step = global_step
        # TensorBoard reads the event files in name order, and a name starts with the second the file was
        # created, then the process id: a resume started in the second the interrupted run's file was
        # created could sort first, and its marker would come before the events it must discard.
        stamps = [int(events.name.split(".")[3]) for events in run_dir.glob("events.out.tfevents.*")]
        wait = max(stamps, default=0) + 1 - time.time()
        if wait > MAX_CLOCK_WAIT_S:  # dated in the future: a clock changed since; waiting would not end soon
            rank_zero_info(
                f"an event file in {run_dir} is dated {wait:.0f} s in the future (a clock changed?):"
                " TensorBoard may show the steps logged after the checkpoint twice"
            )
        else:
            time.sleep(max(0.0, wait))
