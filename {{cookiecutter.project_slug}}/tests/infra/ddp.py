"""DDP runs of ``train.py`` whose processes the test starts itself, as torchrun starts its workers.

Told its place by the environment, Lightning starts no process itself: its launcher would start each rank
but the first as a new interpreter, seconds each. Here each is forked by ``processes.py``.
"""

from __future__ import annotations

from pathlib import Path

import processes
from conftest import PROJECT_ROOT, Result, assert_succeeded, command_line

# Two processes of a DDP run on two cores: one thread each, or they fight over the cores.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1"}


def start_rank(
    rank: int, port: int, *args: str, log_dir: Path, env: dict[str, str] | None = None
) -> processes.Process:
    """Process ``rank`` of a DDP run of ``train.py <args>`` on this machine, one thread, started here.

    ``args`` must ask for DDP on as many devices as ranks are started, meeting at ``port``.
    """
    place = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": "0", "LOCAL_RANK": str(rank)}
    env = {**(env or {}), **place, **SINGLE_THREAD}
    return processes.start(PROJECT_ROOT / "train.py", command_line(args, log_dir), PROJECT_ROOT, env)


def run_ddp(
    *args: str, log_dir: Path, check: bool = True, env: dict[str, str] | None = None, timeout: float = 1200
) -> Result:
    """``train.py <args>`` as a DDP run of two processes (``start_rank``), to its end; ``check`` as in
    ``run_train``.

    The result holds the first non-zero exit status of the two (0 if neither failed) and both outputs,
    rank 0's first.
    """
    port = processes.free_port()
    ranks = [start_rank(rank, port, *args, log_dir=log_dir, env=env) for rank in (0, 1)]
    try:
        results = [Result(rank.wait(timeout), *rank.communicate()) for rank in ranks]
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
    result = Result(
        next((result.returncode for result in results if result.returncode), 0),
        "".join(result.stdout for result in results),
        "".join(result.stderr for result in results),
    )
    if check:
        assert_succeeded(args, result)
    return result
