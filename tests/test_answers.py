"""Hostile answers: each one is either refused cleanly or rendered so that every file reads it back intact.

Refused: a non-zero exit (FailedHookException), exactly one ``error: <field> ...`` line, and no folder.
Rendered: pyproject.toml and the YAML files parse (and setuptools accepts the metadata), every Python file
compiles and lints, the package imports, and pyproject, README, LICENSE and the package docstring give
back the exact text that was typed.
"""

from __future__ import annotations

import ast
import html
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from conftest import render
from cookiecutter.exceptions import FailedHookException, UndefinedVariableInTemplate
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jinja2 import TemplateError
from markdown_it import MarkdownIt
from ruff.__main__ import find_ruff_bin
from setuptools.config.pyprojecttoml import read_configuration

DEFAULTS = {
    "project_name": "Digits Classifier",
    "description": "A PyTorch Lightning project that trains an image classifier.",
    "author_name": "Your Name",
    "author_email": "you@example.com",
    "version": "0.1.0",
}
JINJA_TAGS = ("{{", "{%", "{#")
RUFF = str(find_ruff_bin())


@contextmanager
def stderr_of_hooks():
    """Collect what the hooks (child processes) write to file descriptor 2."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        lines: list[str] = []
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())


def bake(output_dir: Path, **answers: str) -> tuple[Path | None, list[str]]:
    """Render; return the project (None if refused) and the ``error:`` lines the hook printed."""
    with stderr_of_hooks() as lines:
        try:
            project = render(output_dir, **answers)
        except FailedHookException:
            project = None
    return project, [line for line in lines if line.startswith("error:")]


def markdown_text(line: str) -> str:
    """The text a Markdown renderer shows for one line (CommonMark)."""
    rendered = MarkdownIt("commonmark").render(line)
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip()


def check_project(project: Path, answers: dict[str, str]) -> None:
    """Every file parses and reads back the answers exactly."""
    expected = {**DEFAULTS, **answers}
    package = project / project.name.replace("-", "_").replace(".", "_")
    if not package.is_dir():  # package_name given explicitly
        package = next(p.parents[1] for p in project.glob("*/infra/command/cli.py"))

    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert pyproject["description"] == expected["description"]
    assert pyproject["authors"] == [{"name": expected["author_name"], "email": expected["author_email"]}]
    assert pyproject["version"] == expected["version"]
    # setuptools validates the metadata (PEP 621 fields, PEP 440 version, PEP 508 name, email format).
    read_configuration(project / "pyproject.toml")
    for path in project.rglob("*.y*ml"):
        yaml.safe_load(path.read_text(encoding="utf-8"))
    for path in project.rglob("*.py"):
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    readme = (project / "README.md").read_text(encoding="utf-8").splitlines()
    assert readme[0].startswith("# ")
    assert markdown_text(readme[0]) == expected["project_name"]
    assert markdown_text(readme[2]) == expected["description"]
    license_file = project / "LICENSE"
    if license_file.exists():
        assert expected["author_name"] in license_file.read_text(encoding="utf-8")

    # The package imports in a fresh interpreter, and its docstring carries the description.
    result = subprocess.run(
        [sys.executable, "-c", f"import {package.name}; print({package.name}.__doc__)"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONPATH": str(project), "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body = result.stdout.split("\n\n", 1)[1]
    assert body.split() == expected["description"].split()
    # The one Python file with free text in it lints clean (line length, docstring rules, format).
    for command in (["check"], ["format", "--check"]):
        lint = subprocess.run(
            [RUFF, *command, "--no-cache", "-q", str(package / "__init__.py")],
            capture_output=True,
            text=True,
            cwd=project,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout


def assert_refused(output_dir: Path, errors: list[str], field: str) -> None:
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"error: {field} "), errors
    assert "for example" in errors[0]
    assert not any(output_dir.iterdir()), "a refused answer left files behind"


# Values that must render correctly, field by field.
ACCEPTED = {
    "project_name": [
        "Crème Brûlée Detector",
        'The "Quoted" Classifier',
        "O'Neil's Model",
        "Back\\slash Net",
        "Ends With Backslash\\",
        "Emoji Net 🚀🤖",
        "中文 Classifier",
        "Tom & Jerry <b>bold</b> *stars* _under_ `tick` [link](x) #hash",
        "1. Not A List",
        "- Not A Bullet",
        "Title #",
        "$5 Model | Pipes ~~strike~~",
    ],
    "description": [
        "Says \"hi\", and 'bye'.",
        "A path: C:\\new\\temp\\ ends in a backslash\\",
        "Unicode: naïve café, 日本語, emoji 👨‍👩‍👧 and 🚀.",
        "no final period",
        'Quotes at the end "',
        "Two quotes at the end ''",
        "x" * 300,
        " ".join(["word"] * 80),
        "🚀 " * 60 + "wide",
        "Markdown **bold** <script>alert(1)</script> [a](b) & &amp; 1) item",
        "Triple 'single' quotes ''' are fine.",
    ],
    "author_name": [
        'O\'Brien, "Jr." \\ 李',
        "Zoë Ångström",
        "Team: ML & Data <ml@example.org>",
    ],
    "author_email": ["first.last+tag@sub.example.co.uk", "o'brien@example.ie"],
    "version": ["0.1.0", "2.0.0rc1", "1.0.post1", "1!2.0.dev3", "0.1.0+local.1", "1.0a1"],
    "python_version": ["3.10", "3.12", "3.13", "3.15"],
}

# Values that must be refused, with the field the message names.
REFUSED = [
    ({"package_name": "class"}, "package_name"),
    ({"package_name": "match"}, "package_name"),
    ({"package_name": "2fast"}, "package_name"),
    ({"package_name": "my-package"}, "package_name"),
    ({"package_name": "Digits"}, "package_name"),
    ({"package_name": "café"}, "package_name"),
    *[
        ({"package_name": name}, "package_name")
        for name in (
            "torch",
            "pytorch_lightning",
            "lightning",
            "lightning_fabric",
            "torchmetrics",
            "sklearn",
            "yaml",
            "tensorboard",
            "jsonargparse",
            "test",
            "tests",
            "data",
            "models",
            "json",
            "typing",
        )
    ],
    ({"project_slug": "Bad Slug"}, "project_slug"),
    ({"project_slug": "-leading-dash"}, "project_slug"),
    ({"project_slug": "trailing."}, "project_slug"),
    ({"project_slug": "../escape"}, "project_slug"),
    ({"project_name": "🚀🚀", "package_name": "lightning"}, "package_name"),  # slug falls back to my-project
    ({"project_name": ""}, "project_name"),
    ({"project_name": "  padded  "}, "project_name"),
    ({"project_name": "Two\nLines"}, "project_name"),
    ({"project_name": "Tab\there"}, "project_name"),
    ({"description": "line one\nline two"}, "description"),
    ({"description": "carriage\rreturn"}, "description"),
    ({"description": "nul\x00byte"}, "description"),
    ({"description": "delete\x7fchar"}, "description"),
    ({"description": "line\u2028separator"}, "description"),
    ({"description": 'a """docstring""" breaker'}, "description"),
    ({"description": "trailing space "}, "description"),
    ({"author_name": "Multi\nLine"}, "author_name"),
    ({"author_email": "not-an-email"}, "author_email"),
    ({"author_email": "a@b"}, "author_email"),
    ({"author_email": "two@@example.com"}, "author_email"),
    ({"author_email": "space in@example.com"}, "author_email"),
    ({"author_email": "Name <a@example.com>"}, "author_email"),
    ({"version": "1.0.0-beta+"}, "version"),
    ({"version": "one"}, "version"),
    ({"version": "1.0 beta"}, "version"),
    ({"python_version": "2.7"}, "python_version"),
    ({"python_version": "3.8"}, "python_version"),
    ({"python_version": "3.9"}, "python_version"),
    ({"python_version": "3"}, "python_version"),
    ({"python_version": "3.11.2"}, "python_version"),
    ({"python_version": "latest"}, "python_version"),
    # Given as extra_context / on the command line, cookiecutter evaluates these as Jinja first.
    ({"project_name": "{{ 7 * 7 }} Net"}, "project_name"),
    ({"description": "Comment {# gone #} here."}, "description"),
    ({"author_name": "{% raw %}Raw{% endraw %}"}, "author_name"),
]


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, values in ACCEPTED.items() for v in values])
def test_nasty_values_render_intact(tmp_path, field, value):
    # A fixed folder name, so that a project_name that slugifies to a bad package name still renders.
    project, errors = bake(tmp_path, project_slug="nasty-values", **{field: value})
    assert project is not None, errors
    check_project(project, {field: value})


@pytest.mark.parametrize(("answers", "field"), REFUSED, ids=[repr(a)[1:40] for a, _ in REFUSED])
def test_bad_values_are_refused_with_one_line(tmp_path, answers, field):
    project, errors = bake(tmp_path, **answers)
    assert project is None
    assert_refused(tmp_path, errors, field)
    if field in answers and "\r" not in answers[field]:  # Jinja turns \r into \n before the hook sees it
        assert errors[0].startswith(f"error: {field} {answers[field]!r}")


def test_slug_with_a_slash_is_refused(tmp_path):
    project, errors = bake(tmp_path, project_slug="sub/dir")
    assert project is None
    assert errors[0].startswith("error: project_slug 'sub/dir' is not a valid folder")
    # Cookiecutter made sub/dir/ before the hook ran and removes only dir/: the empty sub/ stays.
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_name_without_letters_gets_a_folder_name(tmp_path):
    project, errors = bake(tmp_path, project_name="🚀🚀")
    assert project is not None, errors
    assert (
        project.name == "my-project" and (project / "my_project" / "infra" / "command" / "cli.py").is_file()
    )


def test_jinja_evaluated_by_cookiecutter_is_named(tmp_path):
    project, errors = bake(tmp_path, project_name="{{ 7 * 7 }} Net")
    assert project is None
    assert "cookiecutter evaluates" in errors[0] and "it became '49 Net'" in errors[0]


@pytest.mark.parametrize("value", ["Braces {{ unclosed", "Block {% if %}", "{{ cookiecutter.nope }}"])
def test_invalid_jinja_is_stopped_by_cookiecutter_before_anything_is_written(tmp_path, value):
    # Cookiecutter renders command-line values before any hook runs: it raises, and writes nothing.
    with pytest.raises((TemplateError, UndefinedVariableInTemplate)):
        render(tmp_path, project_name=value)
    assert not any(tmp_path.iterdir())


def test_literal_jinja_typed_at_the_prompt_renders_as_typed(tmp_path):
    # Answers typed at the prompt are not evaluated: braces reach every file as typed.
    answers = ["{{ 7 * 7 }} Braces Net", "braces-net", "", "Uses {% raw %} and {{ x }} literally.", ""]
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "-o", str(tmp_path), str(Path(__file__).parents[1])],
        input="\n".join(answers) + "\n" * 10,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    check_project(
        tmp_path / "braces-net",
        {"project_name": answers[0], "description": answers[3]},
    )


# Text a user could type: printable text with the characters that are special somewhere made common (most
# of it must render), or anything at all, control characters included (refused).
SPECIAL = [
    '"',
    "'",
    "\\",
    '"""',
    "{{",
    "}}",
    "{%",
    "#",
    "*",
    "_",
    "<",
    ">",
    "&",
    "`",
    "[",
    "]",
    "$",
    "|",
    "~",
    "1.",
    "-",
    "é",
    "🚀",
    "👨‍👩‍👧",
    "日本",
    " ",
    "  ",
    "\u00a0",
    "\u200b",
    "\u202e",
]
PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=8)
CLEAN = st.lists(st.one_of(PRINTABLE, st.sampled_from(SPECIAL)), min_size=1, max_size=12).map("".join)
CONTROL = ["\n", "\t", "\u2028", "\x7f"]
ANY = st.lists(st.one_of(st.text(max_size=8), st.sampled_from([*SPECIAL, *CONTROL])), max_size=12)
TEXT = st.one_of(CLEAN.map(str.strip).filter(bool), ANY.map("".join))
EXAMPLES = 150


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(field=st.sampled_from(["project_name", "description", "author_name"]), value=TEXT)
def test_any_text_is_refused_cleanly_or_renders_intact(tmp_path_factory, field, value):
    output_dir = tmp_path_factory.mktemp("prop")
    try:
        project, errors = bake(output_dir, **{field: value})
    except (TemplateError, UndefinedVariableInTemplate):
        # Unbalanced Jinja given as extra_context: cookiecutter stops before writing anything.
        closing = ("}}", "%}", "#}")
        assert any(tag in value or any(c in value for c in closing) for tag in JINJA_TAGS + ("{",))
        assert not any(output_dir.iterdir())
        event("stopped by cookiecutter (invalid Jinja)")
        return
    if project is None:
        assert len(errors) == 1, errors
        event(f"refused: {errors[0].split(' ')[1]}")
        fields = "project_name|project_slug|package_name|description|author_name"
        assert re.match(rf"error: ({fields}) ", errors[0])
        assert not any(output_dir.iterdir())
    else:
        check_project(project, {field: value})
        event(f"rendered intact: {field}")
