"""The hooks: refuse bad names cleanly (one line, no folder left), then print the next steps."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import copy_template, render
from cookiecutter.exceptions import FailedHookException


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"package_name": "class"}, "package_name"),
        ({"package_name": "2fast"}, "package_name"),
        ({"package_name": "my-package"}, "package_name"),
        ({"package_name": "torch"}, "package_name"),
        ({"package_name": "json"}, "package_name"),
        ({"package_name": "data"}, "package_name"),
        ({"project_slug": "Bad Slug"}, "project_slug"),
        ({"project_slug": "-leading-dash"}, "project_slug"),
    ],
)
def test_invalid_names_are_refused_with_one_line(capfd, tmp_path, answers, field):
    with pytest.raises(FailedHookException):
        render(tmp_path, **answers)
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, errors
    value = next(iter(answers.values()))
    assert errors[0].startswith(f"error: {field} {value!r}")
    assert "for example" in errors[0]
    assert not any(tmp_path.iterdir()), "a refused answer left files behind"


def test_derived_names_follow_the_project_name(cookies):
    result = cookies.bake(extra_context={"project_name": "Crème Brûlée Detector"})
    assert result.exit_code == 0, result.exception
    assert result.project_path.name == "creme-brulee-detector"
    assert (result.project_path / "creme_brulee_detector" / "infra" / "command" / "cli.py").is_file()


def test_post_gen_prints_next_steps(cookies, capfd):
    result = cookies.bake()
    assert result.exit_code == 0
    out = capfd.readouterr().out
    for step in (
        f"cd {result.project_path}",  # outside the working directory: the absolute path
        'pip install -e ".[dev]"',
        "python train.py",
        "tensorboard --logdir logs",
    ):
        assert step in out


@pytest.mark.parametrize(
    ("logger", "watch"),
    [
        ("tensorboard", "tensorboard --logdir logs"),
        ("csv", "metrics.csv"),
        ("mlflow", "mlflow ui --backend-store-uri logs/mlruns"),
        ("wandb", "wandb sync logs/wandb/offline-run-*"),
    ],
)
def test_post_gen_names_the_chosen_logger_and_prunes_empty_folders(cookies, capfd, logger, watch):
    result = cookies.bake(extra_context={"logger": logger, "ci": "none"})
    assert result.exit_code == 0, result.exception
    out = capfd.readouterr().out
    assert watch in out
    assert ("tensorboard" in out) == (logger == "tensorboard")
    assert not (result.project_path / ".github").exists()


def test_next_steps_give_the_path_given_with_output_dir(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    render(Path("projects/team"))
    out = capfd.readouterr().out
    assert "cd projects/team/digits-classifier" in out
    assert (tmp_path / "projects" / "team" / "digits-classifier" / "train.py").is_file()


def test_a_template_outside_git_links_nothing_and_says_how(tmp_path, capfd, monkeypatch):
    template = copy_template(tmp_path / "template")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # wherever the tests run, no repository
    project = render(tmp_path / "out", template)
    assert (project / "train.py").is_file() and not (project / ".cruft.json").exists()
    assert "The template is not a git checkout" in capfd.readouterr().out
