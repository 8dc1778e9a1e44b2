"""``train.py`` and ``sweep.py`` in processes of their own, started in a fraction of a second.

A test that needs a real process (a signal, a kill, two runs at once) gets one forked from a server that
has imported torch and Lightning once, instead of a new interpreter paying that import again: seconds on a
small machine, for every run. The child is an ordinary process, with its own pid, signals and exit status,
and runs the script as ``python <script> <args>`` would. What a fresh interpreter alone can prove (the
README's commands, a clean import of an export, the processes Lightning's and torchrun's launchers start)
still gets one. Other DDP runs start each rank here, as torchrun would (``ddp.py``).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import signal
import socket
import sys
import tempfile
from pathlib import Path

# Imported by the server before it forks: what makes ``python train.py`` slow to start. Nothing of this
# project, so that a child imports its code as it is on disk when the child starts. conftest.py may add the
# logger's library; the server skips a module that is not installed.
PRELOAD = ["torch", "pytorch_lightning", "pytorch_lightning.cli"]


def _server() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _run_script(script: str, args: list[str], cwd: str, env: dict[str, str], output: tuple[str, str]) -> None:
    """In the child: become ``python <script> <args>`` run in ``cwd`` with ``env``, output to files."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in zip((1, 2), output, strict=True):
        with open(path, "wb") as file:
            os.dup2(file.fileno(), fd)
    # The search path python would have: the script's folder, then PYTHONPATH.
    extra = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
    sys.path[:0] = [str(Path(script).parent), *extra]
    if "OMP_NUM_THREADS" in env:  # read by torch when the server imported it: applied here instead
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    sys.argv = [script, *args]
    # A child of the fork server starts its own processes (DataLoader workers) the fork server's way, which
    # imports the script and torch again in each one; python <script> would use the platform's default.
    multiprocessing.set_start_method(None, force=True)
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        # A forked child ends with os._exit: run what the interpreter runs at exit (loggers flush there).
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()


class Process:
    """A started script, with the parts of ``subprocess.Popen``'s interface the tests use."""

    def __init__(self, script: Path, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="process-")
        self._output = (f"{self._folder.name}/stdout", f"{self._folder.name}/stderr")
        arguments = (str(script), list(args), str(cwd), env, self._output)
        self._process = _server().Process(target=_run_script, args=arguments)
        self._process.start()
        self.pid = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, number: int) -> None:
        os.kill(self.pid, number)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            self.kill()
            self._process.join()
            raise TimeoutError(f"{self._process.name} ran for more than {timeout} s and was killed")
        return self._process.exitcode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the end; its stdout and stderr."""
        self.wait(timeout)
        stdout, stderr = (Path(path).read_text(errors="replace") for path in self._output)
        self._folder.cleanup()
        return stdout, stderr


def start(script: Path, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Process:
    """Start ``python <script> <args>`` in ``cwd``, with this process's environment plus ``env``."""
    return Process(script, args, cwd, {**os.environ, **(env or {})})


def free_port() -> int:
    """A TCP port free on this machine now: where the processes of a DDP run meet."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
