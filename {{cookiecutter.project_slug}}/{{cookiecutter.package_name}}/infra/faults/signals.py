"""Stop signals, recorded from the first moment: ``train.py`` installs these before PyTorch loads.

A signal that arrives while the imports take their seconds would otherwise end the process (SIGUSR1's
default action is to terminate), or reach Lightning's SLURM handler, which saves from inside the handler.
No PyTorch here, so that this module loads in milliseconds. :mod:`.preemption` acts on what is recorded.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# SLURM sends it before the time limit (``#SBATCH --signal=SIGUSR1@90``); absent on Windows.
REQUEUE_SIGNAL = getattr(signal, "SIGUSR1", None)
STOP_SIGNALS = tuple(s for s in (signal.SIGTERM, signal.SIGINT, REQUEUE_SIGNAL) if s is not None)
# How long a SLURM job may take from the requeue signal to its requeue before the watchdog does it.
REQUEUE_GRACE_S = 45.0

received: list[int] = []  # the signals received so far, in order
_watchdog_stop = threading.Event()


def record(signum: int, frame: FrameType | None) -> None:
    """The handler: note the signal; :class:`.preemption.PreemptionCheckpoint` acts on it."""
    if signum == signal.SIGINT and signal.SIGINT in received:
        stop_now(signum, frame)
    received.append(signum)


def stop_now(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C twice, or once as the process exits: end it now, saving nothing more, with one line.

    A KeyboardInterrupt instead would print a traceback from wherever it landed, an exit handler's say.
    """
    print("stopped by Ctrl-C at once: nothing more was saved", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def watch_for_requeue() -> None:
    """Once SIGUSR1 is recorded, give the run REQUEUE_GRACE_S to stop, then :func:`requeue_anyway`.

    A thread of its own, started with the handlers rather than from one, that runs even while the main
    thread is stuck inside a collective (where no Python signal handler can run).
    """
    while not _watchdog_stop.wait(0.5):
        if REQUEUE_SIGNAL in received:
            if not _watchdog_stop.wait(REQUEUE_GRACE_S):
                requeue_anyway(REQUEUE_SIGNAL)
            return


def requeue_anyway(signum: int) -> None:
    """The run has not stopped within the grace period of SLURM's requeue signal: some process is stuck.

    Say where every thread is, requeue the job from the checkpoint saved last (rank 0 only), and leave
    before the time limit kills the job for good.
    """
    print(
        f"{signal.Signals(signum).name} received {REQUEUE_GRACE_S:.0f} s ago and this process has not"
        " stopped: requeuing from the last checkpoint. Where each thread was:",
        file=sys.stderr,
        flush=True,
    )
    faulthandler.dump_traceback(all_threads=True)
    if os.environ.get("SLURM_PROCID", "0") == "0":
        requeue_job()
    os._exit(128 + signum)


def requeue_job() -> bool:
    """Put this SLURM job back in the queue, to resume with ``--ckpt_path last``; whether that worked.

    A failure (scontrol missing, as in some containers, or refusing) is one line saying so.
    """
    job = os.environ["SLURM_JOB_ID"]
    try:
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, check=False)
    except OSError as error:
        problem = f"scontrol cannot be run ({error.strerror or error})"
    else:
        if result.returncode == 0:
            return True
        problem = f"scontrol requeue {job} failed: {' '.join(result.stderr.split()) or result.returncode}"
    print(f"error: {problem}: the job is not requeued", file=sys.stderr, flush=True)
    return False


def catch_stop_signals() -> dict[int, object]:
    """Record stop signals from now on; returns the handlers that were there, for :func:`restore`."""
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, record)
    if "SLURM_JOB_ID" in os.environ and REQUEUE_SIGNAL is not None and record not in previous.values():
        _watchdog_stop.clear()
        threading.Thread(target=watch_for_requeue, name="requeue-watchdog", daemon=True).start()
    return previous


def settle_for_exit() -> None:
    """In a process whose run is over and only exits: no requeue signal is acted on; Ctrl-C ends it quietly.

    There is nothing left to save or requeue. Python gives the signals it handles back their default action
    as the interpreter shuts down, and SIGUSR1's ends the process: srun would report the task as failed,
    and SLURM the job, of a run that finished. (Shutting down can take seconds, releasing GPUs.) An
    ignored signal stays ignored through the shutdown. A Ctrl-C meanwhile would raise KeyboardInterrupt in
    an exit handler, printing its traceback after the run's last line.
    """
    if REQUEUE_SIGNAL is not None:
        signal.signal(REQUEUE_SIGNAL, signal.SIG_IGN)
    signal.signal(signal.SIGINT, stop_now)


class StopRequested(Exception):  # noqa: N818 (it is a request, not an error)
    """A stop signal, raised where the program is when it arrives (:func:`stops_raise`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stops_raise() -> Iterator[None]:
    """Within the block, SIGTERM and Ctrl-C raise :class:`StopRequested`, where the program is.

    For a command with no point where it could stop on its own (``export.py``): its ``finally`` and
    ``with`` blocks clean up.
    """

    def raise_stop(signum: int, frame: FrameType | None) -> None:
        raise StopRequested(signum)

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    for signum in previous:
        signal.signal(signum, raise_stop)
    try:
        if received:  # while the program was still starting
            raise StopRequested(received[0])
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def restore(previous: dict[int, object]) -> None:
    """Put back the handlers :func:`catch_stop_signals` replaced; the outermost call forgets the signals.

    A run inside a process that caught them first (a sweep's trial) leaves a signal received at its very end
    to that process, which must stop too, and leaves its watchdog running.
    """
    for signum, handler in previous.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    if record not in previous.values():
        received.clear()
        _watchdog_stop.set()
