"""Where each experiment logger keeps its runs, so that ``--ckpt_path last|best`` finds them again.

Lightning writes checkpoints to ``<save_dir>/<name>/<version>/checkpoints/``, and each logger fills in
those parts its own way: TensorBoard and CSV use ``logs/<name>/version_N``, MLflow
``<file store>/<experiment id>/<run id>``, Weights & Biases ``<save_dir>/<project>/<run id>``. The
functions here read the logger section of the configuration (not an instantiated logger), because they
run before anything is created.
"""

from __future__ import annotations

import glob
import os
import sys
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from .claims import LOCK_FILE, lock_run

# The init argument that names a run to continue, for each logger that can continue one. CSVLogger is
# missing on purpose: given an existing version it deletes that run's metrics.csv, so a resumed CSV run
# gets a new version folder instead.
CONTINUE_ARGUMENT = {
    "TensorBoardLogger": "version",
    "MLFlowLogger": "run_id",
    "WandbLogger": "id",
}


# The logger arguments the command line sets to claim or continue a run (CONTINUE_ARGUMENT, W&B's resume,
# TensorBoard's purge_step). A run's config.yaml keeps them as configured: `--config <run>/config.yaml`
# must start a new run, not write into that one.
RUN_ARGUMENTS = (*CONTINUE_ARGUMENT.values(), "resume", "purge_step")


def as_configured(logger_config) -> dict:
    """The values ``RUN_ARGUMENTS`` have in the configuration, before the command line sets any."""
    arguments = getattr(logger_config, "init_args", None) or {}
    return {key: arguments[key] for key in RUN_ARGUMENTS if key in arguments}


def logger_kind(logger_config) -> str:
    """The logger's class name, e.g. ``TensorBoardLogger``, from its ``class_path``."""
    return logger_config.class_path.rsplit(".", 1)[-1]


def experiment_root(logger_config, default_root_dir: str | None) -> Path:
    """The folder whose ``*/checkpoints/`` subfolders are the runs of this experiment (or experiments)."""
    args = logger_config.init_args
    kind = logger_kind(logger_config)
    if kind == "WandbLogger":
        return Path(args.get("save_dir") or ".") / (args.get("project") or "lightning_logs")
    if kind == "MLFlowLogger":
        tracking_uri = args.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
        if tracking_uri and not tracking_uri.startswith("file:"):
            # A tracking server keeps metrics remotely; Lightning puts checkpoints under default_root_dir.
            return Path(default_root_dir or ".")
        return Path(tracking_uri.removeprefix("file:") if tracking_uri else args.get("save_dir"))
    return Path(args.get("save_dir")) / args.get("name")


def check_run_folders(logger_config, default_root_dir: str | None) -> None:
    """Exit with one line if runs would go to a URL (``s3://...``) or to a folder that cannot be made.

    Run folders are claimed, locked and written atomically with local file operations, which would make
    a local folder named ``s3:``.
    """
    args = getattr(logger_config, "init_args", None) or {}
    for key, value in (
        ("trainer.default_root_dir", default_root_dir),
        ("logger save_dir", args.get("save_dir")),
    ):
        if value and "://" in str(value) and not str(value).startswith("file:"):
            sys.exit(
                f"error: {key} {value}: runs are written to a local or shared filesystem, not a URL;"
                " mount the bucket (e.g. s3fs, gcsfuse) and give its path"
            )
        if value:
            folder = Path(str(value).removeprefix("file:"))
            existing = next(path for path in (folder, *folder.parents) if path.exists())
            if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
                sys.exit(
                    f"error: cannot write run folders in {folder}: {existing} is not a folder this process"
                    f" can write; set {key.replace('logger ', 'trainer.logger.init_args.')} elsewhere"
                )


def runs_pattern(logger_config, default_root_dir: str | None) -> str:
    """The glob pattern matching every run folder of this logger (the ``[`` and ``*`` of its path escaped)."""
    root = glob.escape(str(experiment_root(logger_config, default_root_dir)))
    # MLflow nests runs one level deeper, under the experiment id.
    nested = logger_kind(logger_config) == "MLFlowLogger"
    return os.path.join(root, "*", "*") if nested else os.path.join(root, "*")


def last_checkpoints(logger_config, default_root_dir: str | None) -> str:
    """The glob pattern matching the ``last.ckpt`` of every run of this logger."""
    return os.path.join(runs_pattern(logger_config, default_root_dir), "checkpoints", "last.ckpt")


def _oldest_first(pattern: str, depth: int) -> list[Path]:
    """The run folders ``depth`` levels above the files matching ``pattern``, oldest file first."""
    found = sorted((Path(path) for path in glob.glob(pattern)), key=lambda path: path.stat().st_mtime)
    return [path.parents[depth] for path in found]


def checkpointed_runs(logger_config, default_root_dir: str | None) -> list[Path]:
    """The run folders that hold a ``checkpoints/last.ckpt``, oldest first (by that file's time)."""
    return _oldest_first(last_checkpoints(logger_config, default_root_dir), depth=1)


def claimed_runs(logger_config, default_root_dir: str | None) -> list[Path]:
    """Every run folder, checkpointed or not: each holds the ``run.lock`` its run took at the start."""
    return _oldest_first(os.path.join(runs_pattern(logger_config, default_root_dir), LOCK_FILE), depth=0)


def continue_run(logger_config, run: Path) -> bool:
    """Point the logger at ``run`` so that it keeps writing there; False if this logger cannot."""
    argument = CONTINUE_ARGUMENT.get(logger_kind(logger_config))
    if argument is None:
        return False
    logger_config.init_args[argument] = run.name
    if logger_kind(logger_config) == "WandbLogger":
        # Online, W&B refuses an existing run id unless told to resume it.
        logger_config.init_args["resume"] = "allow"
    # Its checkpoints are replaced as the run goes on: Lightning's warning about them does not apply.
    warnings.filterwarnings("ignore", "Checkpoint directory .* exists and is not empty")
    return True


def run_folder(trainer: pl.Trainer) -> Path:
    """The folder of this run, ``<save_dir>/<name>/<version>``: the one that holds ``checkpoints/``.

    Computed as ModelCheckpoint computes its directory, for every logger (``trainer.log_dir`` is the shared
    ``save_dir`` for some), and broadcast from rank 0, where the logger decides its version.
    """
    folder = Path(trainer.default_root_dir)
    if trainer.is_global_zero and trainer.loggers:
        logger = trainer.loggers[0]
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        folder = Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / version
    return Path(trainer.strategy.broadcast(str(folder)))


def same_checkpoint_on_every_rank(trainer: pl.Trainer, checkpoint: str | None) -> None:
    """Raise on every process, naming what each chose, unless all start from the same checkpoint (or none).

    Each process turns ``--ckpt_path last|best`` into a file on its own, before DDP starts. Processes that
    saw different files (nodes whose view of the shared filesystem is not in sync) would restore different
    states and wait for each other in different collectives: a hang until DDP's timeout, or an abort. Files
    are compared by size and modification time, so one file mounted at different paths passes.
    """
    if trainer.world_size == 1:
        return
    identity = None
    if checkpoint:
        stat = Path(checkpoint).stat()
        identity = (stat.st_size, stat.st_mtime_ns)
    chosen: list = [None] * trainer.world_size
    torch.distributed.all_gather_object(chosen, (checkpoint, identity))
    if len({identity for _, identity in chosen}) > 1:
        listed = ", ".join(f"rank {rank} {path or 'none'}" for rank, (path, _) in enumerate(chosen))
        raise MisconfigurationException(
            f"--ckpt_path: the processes chose different checkpoints ({listed}); every node must see the"
            " same run folders: keep them on a filesystem all nodes share, and start again once it is in sync"
        )


class SaveRunConfig(SaveConfigCallback):
    """Saves the resolved ``config.yaml`` into the run's own folder, next to its ``checkpoints/``.

    ``python train.py --config <run>/config.yaml`` runs it again: as a new run (the logger's arguments that
    named this one are saved as configured), and for ``fit`` from scratch (the checkpoint a resume started
    from is in the run's provenance.json). First, before anything is restored, it checks that every process
    starts from the same checkpoint.

    Args:
        as_configured: The configured values of the logger's ``RUN_ARGUMENTS``.
    """

    def __init__(self, *args, as_configured: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.as_configured = as_configured or {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        same_checkpoint_on_every_rank(trainer, self.config.get("ckpt_path"))
        if self.already_saved:
            return
        folder = run_folder(trainer)
        if trainer.is_global_zero:
            lock_run(folder)  # already locked unless the logger names its runs itself (MLflow, W&B)
            self.parser.save(self.rerunnable(stage), folder / self.config_filename, overwrite=True)
        self.already_saved = True

    def rerunnable(self, stage: str):
        """The configuration, with the logger's run arguments as configured and, for fit, no checkpoint."""
        config = self.config.clone()
        arguments = getattr(config.trainer.logger, "init_args", None)
        for key in RUN_ARGUMENTS if arguments is not None else ():
            if key in arguments:
                arguments[key] = self.as_configured.get(key)
        if stage == "fit":
            config.ckpt_path = None
        return config
