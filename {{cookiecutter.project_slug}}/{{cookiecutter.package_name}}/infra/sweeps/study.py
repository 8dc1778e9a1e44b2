"""The study of a sweep: one Optuna journal file that every worker appends to, and who runs which trial.

Workers (processes on one machine, SLURM array tasks on several) share ``<name>.journal`` in the logs
folder. Optuna's journal file works on NFS, where SQLite does not. Beside it, ``<name>.workers`` holds
POSIX byte locks, which the kernel drops when their holder dies, even by SIGKILL:

- byte 0 is held while a worker counts the trials and asks for the next one, so that several workers
  never start more trials than requested between them;
- byte 1 + k is held by worker slot k for its whole life; each trial records the slot that runs it. A
  running trial whose slot nobody holds any more was interrupted: it is marked failed and queued again
  with the same parameters, so the next worker to ask runs it again, from its last checkpoint if it has
  one (``sweep.resume_point``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from .identity import mend_journal, study_id

try:
    import fcntl
except ImportError:  # Windows: one worker at a time, and an interrupted trial is not run again
    fcntl = None

WORKER = "worker"  # the user attribute naming the slot that runs a trial
ERROR = "error"  # the user attribute of a trial that failed because of its parameters (it diverged)
RERUN_OF = "rerun_of"  # the user attribute of a trial queued again after an interruption
RUN = "run"  # the user attribute holding a trial's run folder, set when its run starts


def counted(trial: FrozenTrial) -> bool:
    """Whether ``trial`` counts towards the requested number: done, running, queued, or failed on its own.

    A trial failed by an interruption does not count: it is queued again.
    """
    if trial.state == TrialState.FAIL:
        return ERROR in trial.user_attrs
    return True


class Study:
    """The Optuna study in ``path``, joined as one worker.

    Args:
        path: The journal file; created, with its folder, if missing.
        sweep: The sweep's configuration (``sweep.yaml``): its search space, metric, direction and seed.
            The seed seeds the sampler: trial N samples with ``seed + N``, so that workers and resumed sweeps
            do not repeat one another's draws, and a sweep run alone is reproducible.
        source: Where ``sweep`` was read from, for the error if it no longer matches the study.
        pruner: The Optuna pruner that stops unpromising trials.
    """

    def __init__(self, path: Path, sweep: dict, source: Path, pruner: optuna.pruners.BasePruner) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.seed = sweep["seed"]
        self.locks = os.open(path.with_suffix(".workers"), os.O_RDWR | os.O_CREAT, 0o666)
        self.slot = self._take_slot()
        mend_journal(path)
        storage = JournalStorage(JournalFileBackend(str(path)))
        direction = sweep["direction"]
        refusal = None
        with self._asking():  # workers started together: one creates the study, the others load it
            self.study = optuna.create_study(
                storage=storage, study_name=path.stem, direction=direction, pruner=pruner, load_if_exists=True
            )
            try:
                self.uid = study_id(self.study, sweep, source)
            except SystemExit as refused:
                refusal = refused
        if refusal is not None:
            os.close(self.locks)
            raise refusal

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exception: object) -> None:
        os.close(self.locks)  # and with it every lock of this worker

    def _lock(self, byte: int, wait: bool) -> bool:
        if fcntl is None:
            return True
        try:
            fcntl.lockf(self.locks, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB), 1, byte)
        except OSError:  # held by another process
            return False
        return True

    def _unlock(self, byte: int) -> None:
        if fcntl is not None:
            fcntl.lockf(self.locks, fcntl.LOCK_UN, 1, byte)

    def _take_slot(self) -> int:
        return next(slot for slot in itertools.count() if self._lock(1 + slot, wait=False))

    def _alive(self, slot: object) -> bool:
        """Whether another live process holds ``slot`` (this one runs no trial when it asks)."""
        if fcntl is None:
            return True  # no locks to tell: every running trial is taken to be running
        if not isinstance(slot, int) or slot == self.slot:
            return False
        if self._lock(1 + slot, wait=False):
            self._unlock(1 + slot)
            return False
        return True

    @contextmanager
    def _asking(self) -> Iterator[None]:
        self._lock(0, wait=True)
        try:
            yield
        finally:
            self._unlock(0)

    def requeue_interrupted(self) -> list[int]:
        """Fail the running trials whose worker is gone and queue them again; their numbers."""
        interrupted = []
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not self._alive(trial.user_attrs.get(WORKER)):
                self.study.tell(trial.number, state=TrialState.FAIL)
                self.requeue(trial)
                interrupted.append(trial.number)
        return interrupted

    def requeue(self, trial: FrozenTrial | optuna.Trial) -> None:
        """Queue ``trial``'s parameters again, to be run by the next worker that asks."""
        self.study.enqueue_trial(trial.params, user_attrs={RERUN_OF: trial.number})

    def next_trial(self, target: int) -> tuple[optuna.Trial | None, list[int]]:
        """The next trial to run (None once ``target`` trials are done or running), and the interrupted ones.

        Queued re-runs of interrupted trials come first.
        """
        with self._asking():
            interrupted = self.requeue_interrupted()
            # A queued trial is asked for before any new one, so it is not yet one of the target's.
            trials = self.study.get_trials(deepcopy=False)
            if sum(counted(t) for t in trials if t.state != TrialState.WAITING) >= target:
                return None, interrupted
            number = len(self.study.get_trials(deepcopy=False))
            self.study.sampler = optuna.samplers.TPESampler(seed=self.seed + number)
            trial = self.study.ask()
            trial.set_user_attr(WORKER, self.slot)
            return trial, interrupted
