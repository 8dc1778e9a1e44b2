"""Every set of answers renders to a clean project: no template leftovers, valid files, lint-clean."""

from __future__ import annotations

import py_compile
import re
import tomllib

import pytest
import yaml
from conftest import ANSWERS, python, run
from packaging.requirements import Requirement

# A Jinja marker, or the word; ${{ ... }} is a GitHub Actions expression, kept on purpose ({% raw %}).
LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|cookiecutter")


@pytest.mark.parametrize("name", ANSWERS)
def test_no_template_markers_left(rendered, name):
    project = rendered(name)
    for path in project.rglob("*"):
        assert not LEFTOVER.search(str(path.relative_to(project))), path
        # .cruft.json records the answers as cruft does, under the key "cookiecutter" (test_update.py).
        if path.is_file() and path.name != ".cruft.json":
            assert not LEFTOVER.search(path.read_text(encoding="utf-8")), path


@pytest.mark.parametrize("name", ANSWERS)
def test_files_parse(rendered, name, tmp_path):
    project = rendered(name)
    for path in project.rglob("*.py"):
        py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)
    for path in [*project.rglob("*.yaml"), *project.rglob("*.yml")]:
        yaml.safe_load(path.read_text(encoding="utf-8"))
    metadata = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    answers = {"version": "0.1.0", "python_version": "3.11", **ANSWERS[name]}
    assert metadata["name"] == project.name
    assert metadata["version"] == answers["version"]
    assert metadata["requires-python"] == f">={answers['python_version']}"
    assert "pytorch-lightning>=2.6.6" in metadata["dependencies"]


@pytest.mark.parametrize("name", ANSWERS)
def test_ruff_passes(rendered, name):
    project = rendered(name)
    run(python("-m", "ruff", "check", "--no-cache", "."), cwd=project)
    run(python("-m", "ruff", "format", "--check", "--no-cache", "."), cwd=project)


@pytest.mark.parametrize(
    ("name", "first_line"),
    [
        ("default", "MIT License"),
        ("apache", "Apache License"),
        ("bsd", "BSD 3-Clause License"),
        ("proprietary", None),
    ],
)
def test_license_matches_the_choice(rendered, name, first_line):
    project = rendered(name)
    license_file = project / "LICENSE"
    metadata = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    if first_line is None:
        assert not license_file.exists()
        assert metadata["license"] == "LicenseRef-Proprietary"
        return
    text = license_file.read_text(encoding="utf-8")
    assert text.strip().splitlines()[0].strip() == first_line
    assert ANSWERS[name].get("author_name", "Your Name") in text
    assert metadata["license"] == ANSWERS[name].get("license", "MIT")


def test_package_is_named_after_the_project(rendered):
    project = rendered("apache")
    assert project.name == "vision-lab-experiments"
    assert (project / "vislab" / "lightning" / "module.py").is_file()
    assert "from vislab.infra.command.cli import main" in (project / "train.py").read_text(encoding="utf-8")


def test_torch_floor_excludes_versions_whose_safe_loading_can_be_bypassed(rendered):
    # Before 2.6, torch.load(weights_only=True) could be made to run code (CVE-2025-32434).
    pyproject = tomllib.loads((rendered("default") / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = [Requirement(dependency) for dependency in pyproject["project"]["dependencies"]]
    (torch,) = [requirement for requirement in requirements if requirement.name == "torch"]
    assert not torch.specifier.contains("2.5.1") and torch.specifier.contains("2.6.0")
