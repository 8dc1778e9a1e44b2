"""``python sweep.py``: an Optuna search over any config keys, resumable, parallel and pruned.

Each trial is an ordinary ``train.py fit`` run, in this process (no new process and imports per trial),
with the sampled values as options and a run folder of its own, run ``trial_N`` of the experiment named
after the sweep. The study is one journal file in the logs folder (``study.py``): the same command again,
after a kill or in several processes at once, continues it up to the requested number of trials.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from ..command import cli
from ..command.defaults import default_config
from ..faults.preemption import REQUEUE, exit_after_stop_signal, requeue, wanted
from ..faults.signals import catch_stop_signals, received, restore
from .identity import check_free, owner
from .pruning import ReportToTrial
from .report import print_summary, report_trial, trial_record, write_best_config
from .search_space import as_options, check_keys, fail, make_pruner, read_sweep, suggest
from .study import ERROR, RERUN_OF, RUN, Study, counted

# Options every trial starts with, before sweep.yaml's ``args`` and the command line's: one device per
# trial (run a worker per GPU), and little output, so that the one line per trial stands out.
TRIAL_DEFAULTS = ["--trainer.devices=1", "--trainer.enable_progress_bar=false"]
TRIAL_DEFAULTS += ["--trainer.enable_model_summary=false"]
STOPPED_HINT = "continue the sweep with the same command (the interrupted trial resumes)"
# The logger options naming the experiment and the run: each trial is run trial_N of the experiment
# named after the sweep, so that its curves show next to the other trials'.
NAMING = {
    "TensorBoardLogger": ("name", "version"),
    "CSVLogger": ("name", "version"),
    "MLFlowLogger": ("experiment_name", "run_name"),
    "WandbLogger": ("project", "name"),
}


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The sweep's own options, and the rest: train.py options for every trial."""
    parser = argparse.ArgumentParser(
        prog="sweep.py", allow_abbrev=False, epilog="Any other option is a train.py option for every trial."
    )
    parser.add_argument("--sweep", type=Path, default=default_config().parent / "sweep.yaml")
    parser.add_argument("--trials", type=int, help="trials in all, over every worker (default: sweep.yaml)")
    parser.add_argument("--name", help="the study, and the experiment of its runs (default: sweep.yaml)")
    return parser.parse_known_args(argv)


def resolved_config(train_args: list[str]) -> dict[str, Any]:
    """The configuration train.py runs with ``train_args``, or its one-line error and exit."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            cli.main(["fit", *train_args, "--print_config"])
    except SystemExit as exit:
        if exit.code not in (0, None):
            raise
    return yaml.safe_load(printed.getvalue())


@contextlib.contextmanager
def sweeping() -> Iterator[None]:
    """While trials run: quiet, and stop signals caught for the whole sweep, not only during a trial.

    Lightning's and Optuna's messages for every trial would bury its one line.
    """
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning_fabric")]
    levels, verbosity = [logger.level for logger in loggers], optuna.logging.get_verbosity()
    handlers = catch_stop_signals()
    # The trials' options are passed as args: LightningCLI warns when sys.argv holds some too.
    argv, sys.argv = sys.argv, sys.argv[:1]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            # A trial's run folder is named in advance: it holds run.lock when CSVLogger looks into it.
            warnings.filterwarnings("ignore", "Experiment logs directory .* exists and is not empty")
            yield
    finally:
        restore(handlers)
        sys.argv = argv
        optuna.logging.set_verbosity(verbosity)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def resume_point(study: Study, trial: optuna.Trial) -> tuple[list[str], dict[int, float]]:
    """The option that resumes a rerun from its interrupted trial's checkpoint, and what that trial reported.

    Nothing for the other trials, and for a rerun of a trial interrupted before its first checkpoint: they
    start from scratch.
    """
    if RERUN_OF not in trial.user_attrs:
        return [], {}
    interrupted = study.study.get_trials(deepcopy=False)[trial.user_attrs[RERUN_OF]]
    run = interrupted.user_attrs.get(RUN)
    last = Path(run) / "checkpoints" / "last.ckpt" if run else None
    # Only a checkpoint of that very trial: its folder says so (trial.yaml, written when it started).
    ours = {"study_id": study.uid, "trial": interrupted.number}
    if last is None or not last.is_file() or owner(last.parents[1]) != ours:
        return [], {}
    print(f"trial {trial.number} resumes trial {interrupted.number} from {last}", flush=True)
    return [f"--ckpt_path={last}"], interrupted.intermediate_values  # ReportToTrial reports from a copy


def run_trial(
    study: Study, trial: optuna.Trial, sweep: dict, train_args: list[str], naming: list[str]
) -> None:
    """Run one trial to its end, tell the study how it ended, and print one line saying so."""
    values = suggest(trial, sweep["params"])
    resume, history = resume_point(study, trial)
    marker = trial_record(trial, study.uid, "RUNNING", None, values, "running")
    reporter = ReportToTrial(trial, sweep["metric"], sweep["direction"] == "maximize", history, marker)
    started = time.monotonic()
    try:
        with cli.one_of_several_runs():
            options = [*train_args, *as_options(values), *naming, *resume]
            # A trial stopped by a signal says how to continue the sweep, not the run.
            cli.main(["fit", *options], callbacks=[reporter], resume_hint=STOPPED_HINT)
    except SystemExit as exit:
        if not isinstance(exit.__context__, FloatingPointError):
            # Not the parameters' fault (a signal, missing data, a setting): the sweep stops, and the next
            # command runs the trial again with the same parameters.
            study.study.tell(trial, state=TrialState.FAIL)
            study.requeue(trial)
            raise
        trial.set_user_attr(ERROR, str(exit.code))  # diverged: a result of its parameters, counted
    if reporter.missing is not None:
        study.study.tell(trial, state=TrialState.FAIL)
        study.requeue(trial)
        fail(f"metric {sweep['metric']} is never logged; the runs log {', '.join(reporter.missing)}")
    if reporter.pruned_at is not None:
        state = TrialState.PRUNED
        why = f"pruned after epoch {reporter.pruned_at} by {type(study.study.pruner).__name__}"
        study.study.tell(trial, state=state)
    elif ERROR in trial.user_attrs or reporter.best is None or reporter.best != reporter.best:  # NaN
        state, why = TrialState.FAIL, trial.user_attrs.get(ERROR, f"{sweep['metric']} was not finite")
        trial.set_user_attr(ERROR, why)
        study.study.tell(trial, state=state)
    else:
        state, why = TrialState.COMPLETE, "completed"
        study.study.tell(trial, reporter.best)
    record = trial_record(trial, study.uid, state.name, reporter.best, values, why)
    report_trial(record, sweep["metric"], reporter.run, time.monotonic() - started)


def run_study(
    study: Study, sweep: dict, target: int, train_args: list[str], naming: tuple[str, ...], logs: Path
) -> None:
    """Run trials until the study has ``target``; ``naming``: the study, and the logger options to set."""
    name, experiment, run = naming
    while not received:
        trial, interrupted = study.next_trial(target)
        for number in interrupted:
            print(f"trial {number} was interrupted: running it again", flush=True)
        if trial is None:
            return
        if run == "version":  # loggers that name a run's folder after it (TensorBoard, CSV)
            check_free(logs / name / f"trial_{trial.number}", study.uid, trial.number)
        options = [f"--trainer.logger.init_args.{experiment}={name}"]
        options += [f"--trainer.logger.init_args.{run}=trial_{trial.number}"]
        run_trial(study, trial, sweep, train_args, options)
    # Received between trials, or too late for the trial to stop (it counted): the next command goes on.
    if wanted() == REQUEUE:
        requeue()
    exit_after_stop_signal(STOPPED_HINT)


def check_trial_settings(trainer: dict[str, Any]) -> tuple[dict[str, Any], str, Path]:
    """The resolved logger config, its kind and the logs folder; one line if trials cannot run like this."""
    logger = trainer.get("logger") or fail("sweep.py needs a logger: each trial is a run of its own")
    kind = logger["class_path"].rsplit(".", 1)[-1]
    if kind not in NAMING:
        fail(f"sweep.py does not know how {kind} names its runs (it knows {', '.join(NAMING)})")
    devices = trainer["devices"]
    one = len(devices) == 1 if isinstance(devices, list) else str(devices) == "1"
    if not one or trainer["num_nodes"] != 1:  # DDP would start this sweep again in every process
        fail("sweep.py trains each trial on one device: run a worker per GPU instead")
    return logger, kind, Path(logger["init_args"].get("save_dir") or trainer.get("default_root_dir") or ".")


def main(argv: list[str] | None = None) -> None:
    """Run trials until the study has the requested number, print the best ones, write the best config."""
    options, extra = parse(sys.argv[1:] if argv is None else argv)
    sweep = read_sweep(options.sweep)
    name = options.name or sweep["name"]
    target = sweep["trials"] if options.trials is None else options.trials
    train_args = [*TRIAL_DEFAULTS, *sweep.get("args", []), *extra]
    with sweeping():
        base = resolved_config(train_args)  # checks every option before the first trial
        check_keys(sweep["params"], base)
        logger, kind, logs = check_trial_settings(base["trainer"])
        journal = logs / f"{name}.journal"
        with Study(journal, sweep, options.sweep, make_pruner(sweep.get("pruner"))) as study:
            done = sum(trial.state.is_finished() and counted(trial) for trial in study.study.trials)
            print(f"study {name} in {journal}: {done} trials done, {target} wanted")
            run_study(study, sweep, target, train_args, (name, *NAMING[kind]), logs)
            print_summary(study.study, sweep["metric"], target)
            configured = yaml.safe_load(default_config().read_text(encoding="utf-8"))["trainer"]
            best = write_best_config(
                study.study, logs / f"{name}-best.yaml", (logger["init_args"], configured), NAMING[kind]
            )
    if best:
        print(f"best config: {best}  (python train.py --config {best})")
