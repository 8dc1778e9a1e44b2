"""Stop signals, recorded from the first moment: ``train.py`` installs these before PyTorch loads.

A signal that arrives while the imports take their seconds would otherwise end the process (SIGUSR1's
default action is to terminate), or reach Lightning's SLURM handler, which saves from inside the handler.
No PyTorch here, so that this module loads in milliseconds. :mod:`.preemption` acts on what is recorded.
"""

from __future__ import annotations

import signal
from types import FrameType

# SLURM sends it before the time limit (``#SBATCH --signal=SIGUSR1@90``); absent on Windows.
REQUEUE_SIGNAL = getattr(signal, "SIGUSR1", None)
STOP_SIGNALS = tuple(s for s in (signal.SIGTERM, signal.SIGINT, REQUEUE_SIGNAL) if s is not None)

received: list[int] = []  # the signals received so far, in order


def record(signum: int, frame: FrameType | None) -> None:
    """The handler: note the signal; :class:`.preemption.PreemptionCheckpoint` acts on it."""
    if signum == signal.SIGINT and signal.SIGINT in received:
        raise KeyboardInterrupt  # Ctrl-C twice: stop now, without saving
    received.append(signum)


def catch_stop_signals() -> dict[int, object]:
    """Record stop signals from now on; returns the handlers that were there, for :func:`restore`."""
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, record)
    return previous


def restore(previous: dict[int, object]) -> None:
    """Put back the handlers :func:`catch_stop_signals` replaced, and forget what was received."""
    for signum, handler in previous.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    received.clear()
