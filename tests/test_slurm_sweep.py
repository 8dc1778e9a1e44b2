"""The sweep on a real SLURM: the rendered ``scripts/slurm/sweep.sbatch`` as a 2-task job array, on CPUs.

Each array task is one worker of the same study; together they run the requested number of trials, each
trial once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import render

pytestmark = pytest.mark.slow

TRIALS = 4
# Tiny trials on the CPU; the study and its runs under the test's folder.
TRIAL_ARGS = (
    f"--trials={TRIALS}",
    "--trainer.accelerator=cpu",
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=3",
    "--trainer.limit_val_batches=2",
)
CPU_ARRAY = ("--array=0-1", "--gpus-per-node=0", "--cpus-per-task=1", "--mem=0")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("slurm-sweep-project"), slurm=True)


def test_a_two_task_array_shares_one_study(cluster, project, tmp_path):
    logs = f"--trainer.logger.init_args.save_dir={tmp_path}"
    job = cluster.submit("scripts/slurm/sweep.sbatch", *TRIAL_ARGS, logs, cwd=project, options=CPU_ARRAY)
    outputs = []
    for task in (f"{job}_0", f"{job}_1"):
        state = cluster.wait(task, ("COMPLETED", "FAILED", "CANCELLED"))
        output = (project / f"slurm-{task}.out").read_text(errors="replace")
        assert state.state == "COMPLETED", output
        outputs.append(output)
    # One line per finished trial, in the log of the task that ran it: each trial once, in all TRIALS.
    numbers = [re.findall(r"^trial (\d+) (?:COMPLETE|PRUNED) ", output, re.M) for output in outputs]
    every = numbers[0] + numbers[1]
    assert sorted(map(int, every)) == list(range(TRIALS)), outputs
    records = [yaml.safe_load(path.read_text()) for path in tmp_path.rglob("trial.yaml")]
    assert sorted(record["trial"] for record in records) == list(range(TRIALS))
    print(f"array tasks ran trials {numbers[0]} and {numbers[1]}")
