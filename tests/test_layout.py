"""The machinery knows no example: nothing under infra/, its tests or the entry points names an example's
classes or imports the team's code (data/, models/, lightning/).
"""

from __future__ import annotations

import re

import pytest
from conftest import TEMPLATE

PROJECT = TEMPLATE / "{{cookiecutter.project_slug}}"
PACKAGE = PROJECT / "{{cookiecutter.package_name}}"
# The team's code: each example's DataModule, networks and LightningModule (rendered from templates/modules/).
TEAMS_CODE = [*(PACKAGE / "data").glob("*.py"), *(PACKAGE / "models").glob("*.py")]
TEAMS_CODE += [*(TEMPLATE / "templates" / "modules").glob("*.py")]
MACHINERY = [
    *(PACKAGE / "infra").rglob("*.py"),
    *(PROJECT / "tests" / "infra").glob("*.py"),
    *(TEMPLATE / "templates" / "metrics").glob("*.py"),
    *(PROJECT / name for name in ("train.py", "export.py", "sweep.py")),
]
# An import of the team's code: relative from infra/ (from ...data), or by the package's name in the tests.
TEAMS_IMPORT = re.compile(
    r"^\s*(?:from|import) (?:\.+|\{\{ cookiecutter\.package_name \}\}\.)(?:data|models|lightning)\b",
    re.MULTILINE,
)


def example_classes() -> set[str]:
    """Every class the examples define, whatever the Jinja around them."""
    names = set()
    for path in TEAMS_CODE:
        for found in re.findall(r"^class ([\w{}\" ]+?)\(", path.read_text(encoding="utf-8"), re.MULTILINE):
            # A class named by Jinja, e.g. {{ "SequenceClassifier" if tokens else "ImageClassifier" }}.
            names.update(re.findall(r'"(\w+)"', found) or [found])
    return names


def test_the_examples_classes_are_found():
    expected = {"ImageClassifier", "SequenceClassifier", "Regressor", "DigitsDataModule", "MLP"}
    assert expected <= example_classes()


@pytest.mark.parametrize("path", MACHINERY, ids=lambda path: str(path.relative_to(TEMPLATE)))
def test_the_machinery_names_no_example_and_imports_none(path):
    text = path.read_text(encoding="utf-8")
    named = sorted(name for name in example_classes() if re.search(rf"\b{name}\b", text))
    assert not named, f"{path.name} names {named}"
    imports = TEAMS_IMPORT.findall(text)
    assert not imports, f"{path.name} imports the team's code: {imports}"
