"""Render the template once per set of answers and share the result between tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter
from slurm import Cluster, why_unavailable

TEMPLATE = Path(__file__).resolve().parents[1]
PROJECT_FOLDER = "{{cookiecutter.project_slug}}"
# A team's own code for test_make_it_yours.py: files of a generated project, not tests of this one.
collect_ignore = ["teams"]
# The generated projects' helper that starts their scripts (it holds no template markers), shared, not copied.
sys.path.append(str(TEMPLATE / "{{cookiecutter.project_slug}}" / "tests" / "infra"))
import processes  # noqa: E402

# Answers that exercise every license and the less common shapes of names and versions.
ANSWERS = {
    "default": {},
    "apache": {
        "project_name": "Vision Lab Experiments",
        "package_name": "vislab",
        "description": "Image models for the vision lab.",
        "author_name": "Ada Lovelace",
        "author_email": "ada@example.org",
        "version": "2.0.0rc1",
        "python_version": "3.10",
        "license": "Apache-2.0",
    },
    "bsd": {"project_name": "tiny", "license": "BSD-3-Clause", "python_version": "3.12"},
    "proprietary": {"project_slug": "acme.train", "package_name": "acme_train", "license": "Proprietary"},
}


def render(output_dir: Path, template: Path = TEMPLATE, **answers: str) -> Path:
    """Render ``template`` with ``answers`` (defaults for the rest) and return the project folder."""
    return Path(cookiecutter(str(template), no_input=True, extra_context=answers, output_dir=str(output_dir)))


def copy_template(destination: Path) -> Path:
    """The template's files (as they are on disk, committed or not) copied to ``destination``, without git."""
    destination.mkdir(parents=True)
    for name in ("cookiecutter.json", "local_extensions.py", "hooks", "templates", PROJECT_FOLDER):
        source = TEMPLATE / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, destination / name)
    return destination


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    """``rendered(name)``: the project rendered from ``ANSWERS[name]``, rendered once per session."""
    projects: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in projects:
            projects[name] = render(tmp_path_factory.mktemp(name), **ANSWERS[name])
        return projects[name]

    return get


# A real one-node SLURM (tests/slurm.py) for the cluster tests, one per module and xdist worker.
@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, worker_id: str):
    reason = why_unavailable()
    if reason and not os.environ.get("REQUIRE_SLURM"):  # .ci/run sets it: there, no SLURM is a failure
        pytest.skip(reason)
    worker = int(worker_id.removeprefix("gw")) if worker_id.startswith("gw") else 0
    cluster = Cluster(
        tmp_path_factory.mktemp("slurm"), port=16817 + 10 * worker, first_job_id=1 + 1000 * worker
    )
    # The jobs run the interpreter of these tests, which has the generated project's dependencies.
    cluster.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{cluster.env['PATH']}"
    cluster.start()
    yield cluster
    cluster.stop()


def environment() -> dict[str, str]:
    """The environment of the commands run in generated projects."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    # Each xdist worker's trainings get their share of the cores: torch's threads spin while they wait, so
    # two runs that each use every core take several times longer than one.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    return env


# How long a command in a generated project may take before it counts as hung, on a machine oversubscribed 4x.
COMMAND_TIMEOUT = 1200
# A generated project's whole suite, beside the other slow tests on 2 cores: 2-4 minutes (CI), several times
# that oversubscribed.
WHOLE_SUITE_TIMEOUT = 2400


def run(command: list[str], cwd: Path, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a command in a generated project; fail the test with its output if it fails."""
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment()
    )
    assert result.returncode == 0, (
        f"{command} failed in {cwd}:\n{shortened(result.stdout)}\n{result.stderr[-4000:]}"
    )
    return result


def shortened(output: str, size: int = 4000) -> str:
    """The end of ``output``, and the start of pytest's first failure if the end leaves it out: the logs a
    failed test captured (W&B's run a hundred lines) would otherwise push its traceback out.
    """
    start = output.find("= FAILURES =")
    if start < 0 or len(output) - start <= 2 * size:
        return output[-2 * size :]
    return f"{output[start : start + size]}\n[...]\n{output[-size:]}"


def run_script(root: Path, script: Path, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
    """``python <script> <args>`` in the generated project ``root``; its output. Forked by the projects' own
    ``tests/processes.py`` from a process that imported torch and Lightning once: seconds saved a run.
    """
    process = processes.start(script, list(args), root, {**environment(), "PYTHONPATH": str(root)})
    status = process.wait(timeout)
    stdout, stderr = process.communicate()
    assert status == 0, (
        f"{script.name} {' '.join(args)} failed in {root}:\n{stdout[-4000:]}\n{stderr[-4000:]}"
    )
    return stdout


def python(*args: str) -> list[str]:
    """A command line running this interpreter, which has the generated projects' dependencies."""
    return [sys.executable, *args]


# Tests that take minutes go first, longest first as CI measured them (whole generated suites, then trainings
# and installs), so that the xdist workers finish together instead of one running a long test alone at the
# end. xdist first deals two tests to each worker, round robin; then, with `--maxschedchunk=1` (make test),
# each worker takes one test at a time; by default xdist hands the first worker a whole block of tests.
LONGEST = [
    "whole_suite",
    "test_ten_signals",
    "tests_green[label_smoothing]",  # the make-it-yours step that runs the whole suite
    "test_benchmark.py",
    "readme_command",
    "test_answers.py",
    "test_slurm.py",
    "test_slurm_sweep.py",
    "test_make_it_yours.py",
    "quick_tests_pass",
    "test_install.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, word in enumerate(LONGEST) if word in item.nodeid), len(LONGEST))

    items.sort(key=rank)
