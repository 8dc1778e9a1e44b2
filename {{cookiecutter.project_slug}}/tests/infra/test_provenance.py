"""What a run records about where it came from: its run folder's provenance.json, its checkpoints, its logger.

The project is usually not a git repository while its tests run, so these run a copy of its code in a git
repository each test makes: committed, with uncommitted changes, outside git, and without git.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
from pathlib import Path

import processes
import pytest
import torch
from conftest import MONITOR, PROJECT_ROOT, checkpointed_runs, load_checkpoint, run_folders, run_train
from metrics import read_commit, read_scalars

from {{ cookiecutter.package_name }}.infra.command import code_version
from {{ cookiecutter.package_name }}.infra.command.code_version import PACKAGE, UNTRACKED_LIMIT

SHORT = ("--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1")
IDENTITY = {
    "GIT_AUTHOR_NAME": "Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}


def git(repository: Path, *args: str) -> str:
    """What ``git <args>`` prints in ``repository``."""
    env = {**os.environ, **IDENTITY}
    command = ["git", *args]
    return subprocess.run(command, cwd=repository, capture_output=True, text=True, check=True, env=env).stdout


def copy_code(folder: Path) -> Path:
    """The project's code and configuration (no logs, data or caches), copied into ``folder``."""
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE, folder / PACKAGE.name, ignore=ignored)
    shutil.copytree(PROJECT_ROOT / "configs", folder / "configs")
    shutil.copy(PROJECT_ROOT / "train.py", folder)
    return folder


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A copy of the project's code in a git repository of its own, all of it committed on ``main``."""
    project = copy_code(tmp_path / "project")
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "the code")
    return project


def only_attempts(log_dir: Path) -> tuple[Path, list[dict]]:
    """The one run folder under ``log_dir``, and the attempts its provenance.json records."""
    (run,) = run_folders(log_dir)
    return run, json.loads((run / "provenance.json").read_text(encoding="utf-8"))["attempts"]


def test_a_run_records_its_commit_software_hardware_and_command(repository, tmp_path):
    head = git(repository, "rev-parse", "HEAD").strip()
    # "refuse" lets a run of committed code through.
    args = ("fit", *SHORT, "--uncommitted_code=refuse")
    result = run_train(*args, log_dir=tmp_path / "logs", project=repository)
    assert "warning:" not in result.stderr
    run, (attempt,) = only_attempts(tmp_path / "logs")
    assert attempt["code"] == {
        "commit": head,
        "branch": "main",
        "dirty": False,
        "changed": [],
        "left_out": [],
        "why": None,
    }
    assert not list(run.glob("*.patch"))
    assert (attempt["attempt"], attempt["outcome"], attempt["subcommand"]) == (1, "completed", "fit")
    assert attempt["started"] < attempt["ended"]
    assert (attempt["epochs_completed"], attempt["global_step"]) == (1, 2)
    assert attempt["argv"][1:] == attempt["arguments"] and "--uncommitted_code=refuse" in attempt["arguments"]
    assert attempt["run"] == str(run.resolve()) and attempt["checkpoint"] is None
    software = attempt["software"]
    # A wheel's metadata may leave out torch's local version ("+cu130"), which torch.__version__ keeps.
    assert software["torch"] == torch.__version__
    assert software["packages"]["torch"] == importlib.metadata.version("torch")
    assert software["pytorch_lightning"] == software["packages"]["pytorch-lightning"]
    assert attempt["hardware"]["cpus"] == os.cpu_count() and attempt["hardware"]["world_size"] == 1
    assert attempt["host"]["pid"] != os.getpid() and attempt["host"]["hostname"]
    # Every checkpoint carries the summary, and the logger shows the commit.
    for checkpoint in (run / "checkpoints").glob("*.ckpt"):
        summary = load_checkpoint(checkpoint)["record"]["provenance"]
        assert summary == {
            "run": str(run.resolve()),
            "attempt": 1,
            "commit": head,
            "branch": "main",
            "dirty": False,
            "why": None,
            "started": attempt["started"],
        }
    assert read_commit(run) == head


def test_uncommitted_changes_are_warned_about_once_and_saved_as_a_patch_that_applies(repository, tmp_path):
    package = repository / PACKAGE.name
    with open(repository / "train.py", "a", encoding="utf-8") as file:
        file.write("# a change not committed\n")
    (package / "helper.py").write_text('"""A new module, not committed."""\n', encoding="utf-8")
    (package / "big.txt").write_text("x" * (UNTRACKED_LIMIT + 1), encoding="utf-8")
    (package / "weights.bin").write_bytes(b"\0\1\2")
    result = run_train("fit", *SHORT, log_dir=tmp_path / "logs", project=repository)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "uncommitted changes (train.py, " in warnings[0], result.stderr
    run, (attempt,) = only_attempts(tmp_path / "logs")
    code = attempt["code"]
    assert code["dirty"] is True and code["commit"] == git(repository, "rev-parse", "HEAD").strip()
    new = [f"{PACKAGE.name}/{name}" for name in ("big.txt", "helper.py", "weights.bin")]
    assert sorted(code["changed"]) == sorted(["train.py", *new])
    assert [entry.split(" (")[0] for entry in code["left_out"]] == [new[0], new[2]]
    assert code["patch"] == "uncommitted-1.patch"

    # The commit and the patch give back the code that ran, but for the files left out.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(repository), str(clone))
    git(clone, "apply", str(run / code["patch"]))
    for path in ("train.py", new[1]):
        assert (clone / path).read_bytes() == (repository / path).read_bytes(), path
    assert not (clone / new[0]).exists() and not (clone / new[2]).exists()

    # A team that trains committed code only: nothing starts, nothing is written.
    refuse = ("fit", *SHORT, "--uncommitted_code=refuse")
    refused = run_train(*refuse, log_dir=tmp_path / "refused", project=repository, check=False)
    assert refused.returncode == 1
    error = "error: uncommitted_code refuse: the code has uncommitted changes (train.py, "
    assert refused.stderr.strip().splitlines()[-1].startswith(error)
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").iterdir())


def test_the_patch_keeps_within_its_limit_and_lists_what_it_left_out(repository, monkeypatch):
    with open(repository / "train.py", "a", encoding="utf-8") as file:
        file.write("# first\n")
    (repository / PACKAGE.name / "helper.py").write_text("# second\n", encoding="utf-8")
    whole = code_version.code_version(repository / PACKAGE.name)
    assert whole.dirty and not whole.left_out and b"+# first" in whole.patch and b"+# second" in whole.patch
    # A limit the first file's change fits in, and the second's does not.
    monkeypatch.setattr(code_version, "PATCH_LIMIT", whole.patch.index(b"diff --git", 1))
    bounded = code_version.code_version(repository / PACKAGE.name)
    assert b"+# first" in bounded.patch and b"+# second" not in bounded.patch
    assert len(bounded.patch) <= code_version.PATCH_LIMIT
    limit = code_version.PATCH_LIMIT
    assert bounded.left_out == [f"{PACKAGE.name}/helper.py (past the {limit:,}-byte limit of the patch)"]


def test_a_run_outside_git_or_without_git_goes_on_and_records_why(repository, tmp_path):
    outside = copy_code(tmp_path / "outside")
    run_train("fit", *SHORT, log_dir=tmp_path / "outside-logs", project=outside)
    _, (attempt,) = only_attempts(tmp_path / "outside-logs")
    assert attempt["outcome"] == "completed"
    assert (attempt["code"]["commit"], attempt["code"]["why"]) == (None, "not a git repository")

    empty = tmp_path / "no-git"
    empty.mkdir()
    run_train("fit", *SHORT, log_dir=tmp_path / "logs", project=repository, env={"PATH": str(empty)})
    run, (attempt,) = only_attempts(tmp_path / "logs")
    assert attempt["outcome"] == "completed"
    assert (attempt["code"]["commit"], attempt["code"]["why"]) == (None, "git is not installed")
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["record"]["provenance"]["commit"] is None


@pytest.mark.slow
def test_a_run_again_from_its_config_on_its_commit_reproduces_it_and_another_commit_is_recorded(
    repository, tmp_path
):
    logs = tmp_path / "logs"
    args = ("fit", "--trainer.max_epochs=2", "--trainer.limit_train_batches=3", "--seed_everything=7")
    first_commit = git(repository, "rev-parse", "HEAD").strip()
    run_train(*args, log_dir=logs, project=repository)
    (first,) = run_folders(logs)
    saved = (first / "checkpoints" / "last.ckpt").read_bytes()

    with open(repository / "train.py", "a", encoding="utf-8") as file:
        file.write("# the next commit\n")
    git(repository, "commit", "--quiet", "--all", "--message", "the next commit")
    run_train(*args, log_dir=logs, project=repository)
    (second,) = set(run_folders(logs)) - {first}
    second_commit = json.loads((second / "provenance.json").read_text())["attempts"][0]["code"]["commit"]
    assert second_commit == git(repository, "rev-parse", "HEAD").strip() != first_commit

    # The README's command, exactly: the run's own config.yaml, on its commit.
    git(repository, "checkout", "--quiet", first_commit)
    config = first / "config.yaml"
    process = processes.start(repository / "train.py", ["fit", f"--config={config}"], repository)
    assert process.wait(600) == 0, process.communicate()[1]
    (again,) = set(run_folders(logs)) - {first, second}
    attempts = json.loads((again / "provenance.json").read_text())["attempts"]
    assert [attempt["code"]["commit"] for attempt in attempts] == [first_commit]
    expected, reproduced = read_scalars(first), read_scalars(again)
    assert MONITOR in expected and set(reproduced) == set(expected)
    for name, points in expected.items():
        assert [step for step, _ in reproduced[name]] == [step for step, _ in points], name
        assert [value for _, value in reproduced[name]] == pytest.approx([value for _, value in points]), name
    assert (first / "checkpoints" / "last.ckpt").read_bytes() == saved, "the first run was written to"
    assert len(checkpointed_runs(logs)) == 3
