"""The command line: ``python train.py [fit|validate|test|predict] [--options]`` (``fit`` if omitted).

Every run reads ``configs/config.yaml`` (the project's, whatever the working directory), then the files given
with ``--config``, then the ``--section.key value`` options: later ones win. The model and the DataModule
are whatever classes ``model.class_path`` and ``data.class_path`` name.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from argparse import ArgumentError
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ..faults.preemption import exit_after_stop_signal, hint_for, outcome
from ..faults.signals import catch_stop_signals, restore
from .checks import (
    ConciseParser,
    check_weights_fit,
    one_line_class_error,
    read_checkpoint,
    reported_as_one_line,
)
from .claims import is_first_process, release_runs
from .code_version import check_committed, code_version
from .defaults import (
    SUBCOMMANDS,
    default_config,
    default_precision,
    use_tensor_cores,
    with_default_subcommand,
)
from .linking import (
    check_same_data,
    data_args,
    data_values_pending,
    instantiate_data,
    link,
    takes_any_keyword,
)
from .output import quiet_known_noise
from .provenance import Attempt, checkpoint_origin
from .record import CheckpointRecord, recorded_data_args
from .resume import claim_run, discard_logs_after, find_checkpoint
from .runs import SaveRunConfig, as_configured, check_run_folders


class TrainingCLI(LightningCLI):
    """LightningCLI with this project's defaults.

    The model and the DataModule are whatever classes the config names; the model's arguments that the
    data knows come from the DataModule (``linking.py``). Precision follows the hardware, and
    ``--ckpt_path last`` / ``best`` find the checkpoints of the newest run.
    """

    def __init__(self, *args, subcommand: str | None = None, run_subcommand: bool = True, **kwargs) -> None:
        # Only the subcommand being run gets a parser (all of them for help): each takes a fraction of a
        # second to build, paid by every run.
        self.only, self.run_subcommand = subcommand, run_subcommand
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:
        every = LightningCLI.subcommands()
        return {self.only: every[self.only]} if self.only else every

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--uncommitted_code",
            type=Literal["warn", "refuse"],
            default="warn",
            help="What fit does when the code has uncommitted changes: warn (and record them), or refuse",
        )

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Parse, then turn ``--ckpt_path last|best`` into a file; the values the data gives come later.

        This runs before LightningCLI reads the model's hyperparameters from that file, so that evaluating
        a checkpoint rebuilds the network it was trained with, whatever the config says now.
        """
        with data_values_pending():
            super().parse_arguments(parser, args)
        self.arguments = sys.argv[1:] if args is None else list(args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        if config:  # before the run is claimed or continued below, which names it in the logger's arguments
            self.save_config_kwargs["as_configured"] = as_configured(config.trainer.logger)
        self.continued, self.checkpoint = None, None
        if config and config.ckpt_path in ("last", "best"):
            self.continued = find_checkpoint(config, reuse_run=subcommand == "fit")
        if config and config.ckpt_path:
            # Checked before anything is instantiated, so a bad file leaves no new run folder behind.
            self.checkpoint = read_checkpoint(Path(config.ckpt_path), config.get("weights_only"))
            if self.continued:
                discard_logs_after(self.checkpoint["global_step"], config.trainer.logger, self.continued)
        if not self.continued:
            # A checkpoint restored into a new run folder (evaluating it, or a resumed CSV run) brings its
            # ModelCheckpoint state from the old folder, harmlessly.
            warnings.filterwarnings("ignore", "The dirpath has changed from")

    def _parse_ckpt_path(self) -> None:
        """LightningCLI's: the checkpoint's hyperparameters become the model's arguments.

        If they do not fit the model, one line says so, rather than an error about an option never given.
        """
        subcommand = self.config.get("subcommand")
        parsers = [self.parser, self._parser(subcommand)] if subcommand else [self.parser]
        for parser in parsers:
            parser.exit_on_error = False
        try:
            super()._parse_ckpt_path()
            config = self.config[subcommand] if subcommand else None
            # LightningCLI passes hyperparameters the model does not name as **kwargs, which it may not take.
            unknown = sorted((config.model.get("dict_kwargs") or {}) if config else [])
            if unknown and not takes_any_keyword(config.model.class_path):
                raise ArgumentError(None, f"{', '.join(unknown)}: not among its arguments")
        except ArgumentError as error:
            config = self.config[subcommand]
            model, problem = config.model.class_path.rpartition(".")[2], one_line_class_error(str(error))
            sys.exit(
                f"error: --ckpt_path {config.ckpt_path}: its hyperparameters do not fit {model} ({problem}):"
                " was it saved by another version of the model?"
            )
        finally:
            for parser in parsers:
                parser.exit_on_error = True

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        self.data = instantiate_data(config.data)
        given = data_args(self.data)
        if self.checkpoint is not None:
            check_same_data(given, recorded_data_args(self.checkpoint), config.ckpt_path)
        link(config.model, given, f"{type(self.data).__name__}.model_args()")
        # Rank 0 records the code; with "refuse", every rank checks it, so that all stop alike.
        code = code_version() if is_first_process() or config.uncommitted_code == "refuse" else None
        if self.subcommand == "fit":
            check_committed(code, config.uncommitted_code)
        origin = checkpoint_origin(config.ckpt_path, self.checkpoint) if self.checkpoint is not None else None
        self.attempt = Attempt(self.subcommand, self.arguments, code, origin)
        try:  # now that every value is known
            self.parser.validate(self.config)
        except (TypeError, KeyError, ValueError) as error:
            self.parser.error(str(error))
        self.record = {"model": config.model.class_path, "data": config.data.class_path, "data_args": given}
        if config.trainer.precision is None:
            config.trainer.precision = default_precision(config.trainer.accelerator)
        use_tensor_cores(config.trainer.accelerator)
        check_run_folders(config.trainer.logger, config.trainer.default_root_dir)
        if is_first_process():  # the other ranks write no logs, and DDP has not started yet
            claim_run(config, self.continued)
        if config.trainer.enable_progress_bar is False:
            # The bar is configured as a callback (for its refresh rate); the switch turns that off too.
            callbacks = config.trainer.callbacks or []
            config.trainer.callbacks = [c for c in callbacks if not c.class_path.endswith("ProgressBar")]

    def instantiate_classes(self) -> None:
        """LightningCLI's, with the DataModule built above: it is built once."""
        with_data = self.config.clone()
        with_data[self.subcommand].data = self.data
        self.config_init = self.parser.instantiate(with_data)
        self.datamodule = self._get(self.config_init, "data")
        self.model = self._get(self.config_init, "model")
        self._add_configure_optimizers_method_to_model(self.subcommand)
        self.trainer = self.instantiate_trainer()
        self.trainer.callbacks.append(CheckpointRecord(self.record, self.attempt))

    def after_instantiate_classes(self) -> None:
        super().after_instantiate_classes()
        if self.checkpoint is not None:
            path = self.config[self.subcommand].ckpt_path
            check_weights_fit(self.model, self.checkpoint["state_dict"], path)
            self.checkpoint = None

    def _run_subcommand(self, subcommand: str) -> None:
        if self.run_subcommand:  # export.py builds what a subcommand would run with, and runs its own code
            super()._run_subcommand(subcommand)


def build(
    args: list[str] | None = None, callbacks: list[pl.Callback] | None = None, run: bool = True
) -> TrainingCLI:
    """The command line for ``args`` (``sys.argv`` if None), built and, with ``run``, run.

    Args:
        args: The options, instead of ``sys.argv``.
        callbacks: Added to the configured ones: how ``sweep.py`` follows each trial.
        run: Run the subcommand; without, only build the model, data and trainer it would run with.
    """
    if args is None:
        # Rewritten in place rather than passed as ``args``: DDP re-launches this script with sys.argv.
        sys.argv[1:] = with_default_subcommand(sys.argv[1:])
    else:
        args = with_default_subcommand(args)
    argv = sys.argv[1:] if args is None else args
    subcommand = argv[0] if argv[0] in SUBCOMMANDS else None
    config = default_config()
    parser_kwargs = {command: {"default_config_files": [config]} for command in SUBCOMMANDS}
    if subcommand:
        parser_kwargs = {subcommand: parser_kwargs[subcommand]}
    return TrainingCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subcommand=subcommand,
        run_subcommand=run,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        parser_class=ConciseParser,
        parser_kwargs=parser_kwargs,
        save_config_callback=SaveRunConfig,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        trainer_defaults={"callbacks": callbacks or []},
    )


def main(
    args: list[str] | None = None,
    callbacks: list[pl.Callback] | None = None,
    resume_hint: str | None = None,
) -> None:
    """Run the command line; without a subcommand, ``fit``.

    Args:
        args: The options, instead of ``sys.argv``.
        callbacks: Added to the configured ones: how ``sweep.py`` follows each trial.
        resume_hint: What a run stopped by a signal says on its way out: how to go on (default: what fits
            the subcommand).
    """
    quiet_known_noise()
    outcome.update(saved=True, requeued=None)
    argv = with_default_subcommand(sys.argv[1:] if args is None else args)
    # MLflow 3 refuses a local file store unless asked (no effect with other loggers or a tracking server).
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    previous_handlers = catch_stop_signals()
    try:
        with reported_as_one_line():
            build(args, callbacks)
    except SIGTERMException:
        exit_after_stop_signal(resume_hint or hint_for(argv[0] if argv[0] in SUBCOMMANDS else None))
    finally:
        release_runs()
        restore(previous_handlers)


@contextlib.contextmanager
def one_of_several_runs() -> Iterator[None]:
    """Around a run in a process that goes on to others (a sweep's trials, the tests): nothing carries over.

    Loggers set environment variables (MLflow its tracking URI and run id) and W&B keeps its run open in the
    process that started it; the next run gets neither.
    """
    environment = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environment)
        if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
            sys.modules["wandb"].finish()
