"""A generated project takes in a newer template with cruft, and keeps its own edits.

Template version A is committed to a scratch git repository, a project is generated from it (with ``cruft
create``, or with plain ``cookiecutter``, whose hook links it), the user edits and commits a file, the
template moves on to version B, and ``cruft update`` must bring B's change in while the user's edit survives.
Both template versions are rendered again by cruft during the update, hooks included: they must be safe to
re-run. The generated CI's scheduled job runs ``scripts/update_from_template.py``, which puts the update on a
branch of its own, conflicts included; here against a local template and a local ``origin``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_template

pytestmark = pytest.mark.slow

CRUFT = [str(Path(sys.executable).with_name("cruft"))]
COOKIECUTTER = str(Path(sys.executable).with_name("cookiecutter"))
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}


def sh(*command: str, cwd: Path, status: int = 0) -> subprocess.CompletedProcess:
    """Run ``command`` in ``cwd``; it must exit with ``status``."""
    env = {**os.environ, **GIT_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert result.returncode == status, (
        f"{command} in {cwd}: {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def commit_all(repo: Path, message: str) -> str:
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", message, cwd=repo)
    return sh("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()


def template_version_a(tmp_path: Path) -> tuple[Path, str]:
    """The template's files committed to a scratch repository; the repository and the commit."""
    template = copy_template(tmp_path / "template")
    sh("git", "init", "-q", "-b", "main", cwd=template)
    return template, commit_all(template, "template version A")


def template_config(template: Path) -> Path:
    return template / "{{cookiecutter.project_slug}}" / "configs" / "config.yaml"


def template_version_b(template: Path, batch_size: str = "64") -> str:
    """Version B: a note in the config (and the batch size given), and a new file; B's commit."""
    config = template_config(template)
    text = config.read_text(encoding="utf-8").replace("batch_size: 64", f"batch_size: {batch_size}")
    config.write_text(text.replace("seed_everything: 42", "# Template B was here.\nseed_everything: 42"))
    (template / "{{cookiecutter.project_slug}}" / "CHANGELOG.md").write_text(
        "# Changelog\n", encoding="utf-8"
    )
    return commit_all(template, "template version B")


def edit_and_commit(project: Path) -> Path:
    """The user's own change, to a line the template may change too; the file changed."""
    config = project / "configs" / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("batch_size: 64", "batch_size: 32"))
    commit_all(project, "smaller batches")
    return config


def test_cruft_update_brings_template_changes_and_keeps_user_edits(tmp_path):
    template, version_a = template_version_a(tmp_path)
    answers = {"logger": "csv", "ci": "gitlab", "docker": "yes"}
    create = ["create", str(template), "--no-input", "--extra-context", json.dumps(answers)]
    sh(*CRUFT, *create, "--output-dir", str(tmp_path), cwd=tmp_path)
    project = tmp_path / "digits-classifier"
    cruft_state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert cruft_state["commit"] == version_a
    assert cruft_state["context"]["cookiecutter"]["logger"] == "csv"
    assert (project / "Dockerfile").is_file() and not (project / ".github").exists()
    sh("git", "init", "-q", "-b", "main", cwd=project)
    commit_all(project, "generated")
    config = edit_and_commit(project)
    version_b = template_version_b(template)

    sh(*CRUFT, "update", "--skip-apply-ask", cwd=project)

    updated = config.read_text(encoding="utf-8")
    assert "# Template B was here." in updated, "the template's change did not arrive"
    assert "batch_size: 32" in updated and "batch_size: 64" not in updated, "the user's edit was lost"
    assert (project / "CHANGELOG.md").read_text(encoding="utf-8") == "# Changelog\n"
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == version_b
    # The hooks re-ran in cruft's scratch folders, not here: no stray files, no git operations.
    status = sh("git", "status", "--porcelain", cwd=project).stdout
    assert {line[3:] for line in status.splitlines()} == {
        ".cruft.json",
        "CHANGELOG.md",
        "configs/config.yaml",
    }
    assert not list(project.rglob("*.rej")), "the update left conflicts"
    sh(*CRUFT, "check", cwd=project)  # now up to date


def generate_with_cookiecutter(template: Path, output: Path, **answers: str) -> Path:
    """Plain ``cookiecutter``, the README's first command: the project, in a git repository, committed."""
    sh(
        COOKIECUTTER,
        str(template),
        "--no-input",
        "-o",
        str(output),
        *(f"{k}={v}" for k, v in answers.items()),
        cwd=output,
    )
    project = output / "digits-classifier"
    sh("git", "init", "-q", "-b", "main", cwd=project)
    commit_all(project, "generated")
    return project


def test_a_project_made_with_plain_cookiecutter_updates_with_cruft(tmp_path):
    template, version_a = template_version_a(tmp_path)
    project = generate_with_cookiecutter(template, tmp_path, logger="mlflow", ci="gitlab")
    # The hook wrote what cruft create writes: the template, its commit, the answers.
    state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert (state["template"], state["commit"], state["directory"]) == (str(template), version_a, None)
    answers = state["context"]["cookiecutter"]
    assert (answers["logger"], answers["ci"], answers["_commit"]) == ("mlflow", "gitlab", version_a)
    assert not {"_output_dir", "_repo_dir", "_checkout"} & set(answers), "this machine's folders"
    sh(*CRUFT, "check", cwd=project)
    config = edit_and_commit(project)
    version_b = template_version_b(template)

    sh(*CRUFT, "check", cwd=project, status=1)  # out of date
    difference = sh(*CRUFT, "diff", cwd=project).stdout  # from the project to the template it came from
    assert "\n-    batch_size: 32 " in difference and "\n+    batch_size: 64 " in difference
    sh(*CRUFT, "update", "--skip-apply-ask", cwd=project)
    updated = config.read_text(encoding="utf-8")
    assert "# Template B was here." in updated, "the template's change did not arrive"
    assert "batch_size: 32" in updated and "batch_size: 64" not in updated, "the user's edit was lost"
    assert (project / "CHANGELOG.md").is_file() and (project / ".gitlab-ci.yml").is_file()
    assert not (project / ".github").exists() and not list(project.rglob("*.rej"))
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == version_b
    sh(*CRUFT, "check", cwd=project)


def test_the_scheduled_job_puts_the_update_on_a_branch_conflicts_marked_and_proposes_it_once(tmp_path):
    template, version_a = template_version_a(tmp_path)
    project = generate_with_cookiecutter(template, tmp_path)
    script = [sys.executable, "scripts/update_from_template.py"]
    sh("git", "init", "-q", "--bare", str(tmp_path / "origin.git"), cwd=tmp_path)
    sh("git", "remote", "add", "origin", str(tmp_path / "origin.git"), cwd=project)
    sh("git", "push", "-q", "origin", "main", cwd=project)
    up_to_date = sh(*script, cwd=project)
    assert up_to_date.stdout == "" and "up to date" in up_to_date.stderr

    edit_and_commit(project)  # batch_size 32, where the template's next version says 128
    edited = sh("git", "rev-parse", "HEAD", cwd=project).stdout
    version_b = template_version_b(template, batch_size="128")
    proposed = sh(*script, cwd=project)
    branch = f"template-update/{version_b[:12]}"
    assert proposed.stdout == f"{branch}\n", proposed.stderr
    assert sh("git", "branch", "--show-current", cwd=project).stdout.strip() == branch
    assert sh("git", "status", "--porcelain", cwd=project).stdout == "", "everything is committed"
    log = sh("git", "log", "--format=%s%n%b", "main..", cwd=project).stdout
    assert log.startswith(f"Update from the project template: {version_a[:12]} -> {version_b[:12]}")
    assert "configs/config.yaml" in log, "the commit lists the file to resolve"
    config = (project / "configs" / "config.yaml").read_text(encoding="utf-8")
    # The conflict is left for a person; the rest of the update arrived.
    assert "<<<<<<<" in config and "batch_size: 32" in config and "batch_size: 128" in config
    assert "# Template B was here." in config and (project / "CHANGELOG.md").is_file()
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == version_b
    assert "<<<<<<<" not in sh("git", "show", "main:configs/config.yaml", cwd=project).stdout

    # As the CI job does, the branch goes to origin; the next scheduled run finds it there.
    sh("git", "push", "-q", "origin", branch, cwd=project)
    sh("git", "switch", "-q", "main", cwd=project)
    sh("git", "branch", "-q", "-D", branch, cwd=project)  # a CI job's checkout has origin's branch only
    again = sh(*script, cwd=project)
    assert again.stdout == "" and f"{branch} exists already" in again.stderr
    assert sh("git", "status", "--porcelain", cwd=project).stdout == ""
    assert sh("git", "rev-parse", "HEAD", cwd=project).stdout == edited
