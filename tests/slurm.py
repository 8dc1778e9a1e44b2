"""A real one-node SLURM cluster for the cluster tests: Debian's slurm-wlm and munge, started in seconds.

The daemons run as root with their state in a temporary folder; they are installed with apt when missing
(``.ci/run`` does that on a fresh machine). :class:`Cluster` submits scripts and watches jobs through the
ordinary client commands, as a user would.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
PACKAGES = ("slurm-wlm", "munge")

SLURM_CONF = """\
ClusterName=tests
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobRequeue=1
FirstJobId={first_job_id}
KillWait=10
MinJobAge=600
ReturnToService=2
SchedulerType=sched/backfill
MpiDefault=none
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldPort={port}
SlurmdPort={slurmd_port}
NodeName={host} CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""


def why_unavailable() -> str | None:
    """Why this machine cannot run the cluster (not root and SLURM missing), or None if it can."""
    if all(shutil.which(daemon) for daemon in DAEMONS):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "slurm-wlm and munge are not installed, and installing them needs root and apt-get"
    return None


def install() -> None:
    """Install slurm-wlm and munge with apt when a daemon is missing."""
    if all(shutil.which(daemon) for daemon in DAEMONS):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], check=True, env=env, capture_output=True)


def munged_running() -> bool:
    """Whether munged answers: its client gets a credential."""
    return subprocess.run(["munge", "-n"], capture_output=True).returncode == 0


@dataclass
class Job:
    """What ``scontrol show job`` says about a job."""

    state: str
    restarts: int
    exit_code: str


class Cluster:
    """A one-node SLURM whose configuration and state live under ``root``."""

    def __init__(self, root: Path, port: int = 16817, first_job_id: int = 1) -> None:
        # Each pytest-xdist worker runs a cluster of its own, on its own ports and with its own job ids:
        # Lightning derives the DDP port from the job id (15000 + its last 4 digits), so two clusters on
        # one machine running job 4 at once would join each other's rendezvous.
        self.root = root
        self.port = port
        self.first_job_id = first_job_id
        self.env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
        self.processes: list[subprocess.Popen] = []
        self.pending_since: dict[tuple[str, int], float] = {}  # (job, restarts) -> when seen requeued

    def start(self) -> None:
        install()
        for folder in ("state", "spool"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        conf = SLURM_CONF.format(
            host=socket.gethostname().split(".")[0],
            root=self.root,
            cpus=os.cpu_count(),
            memory=memory // 2,
            port=self.port,
            slurmd_port=self.port + 1,
            first_job_id=self.first_job_id,
        )
        (self.root / "slurm.conf").write_text(conf, encoding="utf-8")
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["mungekey", "-c"], check=True, capture_output=True)
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        if not munged_running():
            # One munged serves every cluster of this machine; it outlives the test session.
            started = subprocess.run(["munged", "--force"], capture_output=True, text=True)
            # Test workers starting their clusters together both try: the one that loses uses the other's.
            deadline = time.monotonic() + 300
            while not munged_running():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"munged did not start: {started.stderr.strip()}")
                time.sleep(0.1)
        for daemon in ("slurmctld", "slurmd"):
            # -D: in the foreground, so that the test session owns the daemons and stops them.
            log = (self.root / f"{daemon}.out").open("w")
            command = [daemon, "-D", "-f", str(self.root / "slurm.conf")]
            self.processes.append(subprocess.Popen(command, stdout=log, stderr=log, env=self.env))
        deadline = time.monotonic() + 300
        while "idle" not in self.command("sinfo", "-h", "-o", "%T", check=False).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError(f"SLURM did not come up:\n{self.logs()}")
            time.sleep(0.5)

    def stop(self) -> None:
        self.command("scancel", "--full", "-u", "root", check=False)
        deadline = time.monotonic() + 120
        while self.command("squeue", "-h", check=False).stdout.strip() and time.monotonic() < deadline:
            time.sleep(0.5)
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-3000:]
            for path in sorted(self.root.glob("*.log"))
            if path.exists()
        )

    def command(self, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(args, capture_output=True, text=True, env=self.env, cwd=cwd, timeout=300)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def submit(self, script: str, *args: str, cwd: Path, options: tuple[str, ...] = ()) -> str:
        """``sbatch [options] script [args]`` from ``cwd``; the job id."""
        result = self.command("sbatch", "--parsable", *options, script, *args, cwd=cwd)
        return result.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> Job:
        text = self.command("scontrol", "show", "job", job_id).stdout
        fields = dict(re.findall(r"(\w+)=(\S*)", text))
        return Job(fields["JobState"], int(fields.get("Restarts", 0)), fields.get("ExitCode", ""))

    def release(self, job_id: str) -> None:
        """Start a requeued job now rather than after SLURM's pause of about two minutes.

        Not within the second of the requeue: slurmd then still holds the previous attempt's revoked
        credential and refuses the new one, and the job fails ("Job credential revoked").
        """
        job = self.job(job_id)
        if job.state != "PENDING" or not job.restarts:
            return
        first_seen = self.pending_since.setdefault((job_id, job.restarts), time.monotonic())
        if time.monotonic() - first_seen >= 2:
            self.command("scontrol", "update", f"JobId={job_id}", "StartTime=now", check=False)

    def wait(self, job_id: str, states: tuple[str, ...], timeout: float = 1200) -> Job:
        """Wait until the job is in one of ``states``, releasing it whenever it is requeued."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.state in states:
                return job
            self.release(job_id)
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout} s:\n{self.logs()}")
            time.sleep(0.5)
