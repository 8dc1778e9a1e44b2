"""Refuse answers that would produce a broken project, with one line naming the field and the fix.

Cookiecutter runs this after the prompts and before rendering; a non-zero exit makes it delete the
(still empty) output folder, so a refused answer leaves nothing behind.
"""

import json
import keyword
import re
import sys

# Cookiecutter renders this into JSON inside a raw single-quoted string: JSON escapes every ' it holds,
# so any answer is safe here (fmt: skip keeps the formatter from switching to double quotes).
ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')  # fmt: skip

# Importing the project must never shadow these: the stack the project runs on, and names so generic
# that another installed package or a stray folder would collide with them.
RESERVED_PACKAGE_NAMES = {
    "torch",
    "torchvision",
    "torchmetrics",
    "pytorch_lightning",
    "lightning",
    "lightning_fabric",
    "lightning_utilities",
    "jsonargparse",
    "sklearn",
    "scipy",
    "numpy",
    "yaml",
    "tensorboard",
    "pytest",
    "setuptools",
    "pip",
    "test",
    "tests",
    "data",
    "models",
    "model",
    "src",
    "utils",
    "configs",
    "train",
    "scripts",
}

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")


def problem(field: str, value: str, rule: str, example: str) -> str:
    return f"error: {field} {value!r} {rule}; for example {example!r}"


def check_package_name(name: str):
    example = "digits_classifier"
    if not name.isidentifier() or not name.isascii():
        return problem("package_name", name, "is not a Python identifier (ASCII letters, digits, _)", example)
    if name != name.lower():
        return problem("package_name", name, "must be lower case (PEP 8)", name.lower())
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return problem("package_name", name, "is a Python keyword", example)
    if name in sys.stdlib_module_names or name in RESERVED_PACKAGE_NAMES:
        return problem("package_name", name, "would shadow a module the project imports", f"{name}_project")
    return None


def check_project_slug(slug: str):
    if not SLUG_PATTERN.match(slug):
        rule = "is not a valid folder / distribution name (lower-case letters, digits, '.', '_', '-')"
        return problem("project_slug", slug, rule, "digits-classifier")
    return None


def main() -> int:
    # The package name is derived from the slug: report the first problem only, the root cause.
    error = check_project_slug(ANSWERS["project_slug"]) or check_package_name(ANSWERS["package_name"])
    if error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
