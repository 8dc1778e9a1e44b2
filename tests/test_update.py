"""A generated project takes in a newer template with cruft, and keeps its own edits.

Template version A is committed to a scratch git repository, a project is created from it with
``cruft create``, the user edits and commits a file, the template moves on to version B, and
``cruft update`` must bring B's change in while the user's edit survives. Both template versions are
rendered again by cruft during the update, hooks included: they must be safe to re-run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE

pytestmark = pytest.mark.slow

CRUFT = [str(Path(sys.executable).with_name("cruft"))]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}


def sh(*command: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert result.returncode == 0, (
        f"{command} failed in {cwd}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def commit_all(repo: Path, message: str) -> str:
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", message, cwd=repo)
    return sh("git", "rev-parse", "HEAD", cwd=repo).strip()


def test_cruft_update_brings_template_changes_and_keeps_user_edits(tmp_path):
    template = tmp_path / "template"
    template.mkdir()
    for name in (
        "cookiecutter.json",
        "local_extensions.py",
        "hooks",
        "templates",
        "{{cookiecutter.project_slug}}",
    ):
        source = TEMPLATE / name
        if source.is_dir():
            shutil.copytree(source, template / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, template / name)
    sh("git", "init", "-q", "-b", "main", cwd=template)
    version_a = commit_all(template, "template version A")

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

    # The user's own change, to a file the template also changes below.
    config = project / "configs" / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("batch_size: 64", "batch_size: 32"))
    commit_all(project, "smaller batches")

    # Template version B: a new note in the config and a new file.
    template_config = template / "{{cookiecutter.project_slug}}" / "configs" / "config.yaml"
    text = template_config.read_text(encoding="utf-8")
    template_config.write_text(
        text.replace("seed_everything: 42", "# Template B was here.\nseed_everything: 42")
    )
    (template / "{{cookiecutter.project_slug}}" / "CHANGELOG.md").write_text(
        "# Changelog\n", encoding="utf-8"
    )
    version_b = commit_all(template, "template version B")

    sh(*CRUFT, "update", "--skip-apply-ask", cwd=project)

    updated = config.read_text(encoding="utf-8")
    assert "# Template B was here." in updated, "the template's change did not arrive"
    assert "batch_size: 32" in updated and "batch_size: 64" not in updated, "the user's edit was lost"
    assert (project / "CHANGELOG.md").read_text(encoding="utf-8") == "# Changelog\n"
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == version_b
    # The hooks re-ran in cruft's scratch folders, not here: no stray files, no git operations.
    status = sh("git", "status", "--porcelain", cwd=project)
    assert {line[3:] for line in status.splitlines()} == {
        ".cruft.json",
        "CHANGELOG.md",
        "configs/config.yaml",
    }
    assert not list(project.rglob("*.rej")), "the update left conflicts"
    sh(*CRUFT, "check", cwd=project)  # now up to date
