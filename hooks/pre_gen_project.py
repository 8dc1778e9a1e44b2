"""Refuse answers that would produce a broken project, with one line naming the field and the fix.

Cookiecutter runs this after the prompts and before rendering; a non-zero exit makes it delete the
(still empty) output folder, so a refused answer leaves nothing behind. Standard library only: this runs
in cookiecutter's interpreter, which need not have ``packaging``.
"""

import json
import keyword
import re
import sys
import unicodedata

# Cookiecutter renders these into JSON inside raw single-quoted strings: JSON escapes every ' it holds,
# so any answer is safe here (fmt: skip keeps the formatter from switching to double quotes).
ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')  # fmt: skip
# The answers as they reached cookiecutter. Values given on the command line or in extra_context are
# Jinja templates to cookiecutter: it evaluates them (a sum becomes its result, a comment vanishes) before
# this hook runs. Answers typed at the prompt are kept as typed, and equal here to their default.
RAW_ANSWERS = json.loads(r'{{ _cookiecutter | default(cookiecutter) | tojson }}')  # fmt: skip
FREE_TEXT = ("project_name", "description", "author_name", "author_email", "version", "python_version")
JINJA_TAGS = ("{" + "{", "{" + "%", "{" + "#")

# Importing the project must never shadow these: the stack the project runs on, and names so generic
# that another installed package or a stray folder would collide with them.
RESERVED_PACKAGE_NAMES = {
    *("torch", "torchvision", "torchaudio", "torchmetrics", "triton", "onnx", "onnxruntime"),
    *("pytorch_lightning", "lightning", "lightning_fabric", "lightning_utilities"),
    *("jsonargparse", "docstring_parser", "typeshed_client", "yaml", "packaging", "typing_extensions"),
    *("sklearn", "scipy", "numpy", "pandas", "fsspec", "tensorboard", "tensorboardX", "google", "protobuf"),
    *("mlflow", "wandb", "pytest", "ruff", "setuptools", "pip", "pkg_resources", "wheel"),
    *("test", "tests", "data", "dataset", "datasets", "model", "models", "src", "lib", "utils"),
    *("config", "configs", "train", "scripts", "logs", "checkpoints", "notebooks"),
}

# PEP 508 distribution name (case-insensitive there; lower case here, as PyPI normalises it), also a
# portable folder name.
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
# An address pip, setuptools and PyPI accept: RFC 5322 "dot-atom" local part, ASCII domain with a TLD.
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
# PEP 440, Appendix B (the regular expression that the specification gives for a valid version).
VERSION_PATTERN = re.compile(
    r"""^\s*v?(?:(?:(?P<epoch>[0-9]+)!)?(?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_\.]?(?P<pre_l>(a|b|c|rc|alpha|beta|pre|preview))[-_\.]?(?P<pre_n>[0-9]+)?)?
    (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_\.]?(?P<post_l>post|rev|r)[-_\.]?(?P<post_n2>[0-9]+)?))?
    (?P<dev>[-_\.]?(?P<dev_l>dev)[-_\.]?(?P<dev_n>[0-9]+)?)?)
    (?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?\s*$""",
    re.VERBOSE | re.IGNORECASE,
)
# The stack (torch, Lightning) needs 3.10+; ruff's target-version knows up to 3.15.
PYTHON_VERSIONS = [f"3.{minor}" for minor in range(10, 16)]


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
    if name in getattr(sys, "stdlib_module_names", ()) or name in RESERVED_PACKAGE_NAMES:
        return problem("package_name", name, "would shadow a module the project imports", f"{name}_project")
    return None


def check_project_slug(slug: str):
    if not SLUG_PATTERN.match(slug):
        rule = "is not a valid folder / distribution name (lower-case letters, digits, '.', '_', '-')"
        return problem("project_slug", slug, rule, "digits-classifier")
    return None


def check_text(field: str, value: str, example: str):
    """One line of printable text, as it reached cookiecutter: no line breaks, controls or Jinja."""
    raw = RAW_ANSWERS.get(field, value)
    if raw != value and any(tag in raw for tag in JINJA_TAGS):
        rule = (
            "is Jinja template syntax, which cookiecutter evaluates in answers given on the command line "
            f"(it became {value!r}); type it at the prompt instead"
        )
        return problem(field, raw, rule, example)
    if not value.strip():
        return problem(field, value, "is empty", example)
    if value != value.strip():
        return problem(field, value, "starts or ends with white space", value.strip())
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in "\ufffe\uffff":
            name = unicodedata.name(char, "a control character")
            rule = f"contains U+{ord(char):04X} ({name}): one line of printable text only"
            return problem(field, value, rule, example)
    if field == "description" and '"""' in value:
        rule = 'contains """, which would end the package docstring'
        return problem(field, value, rule, value.replace('"""', '"'))
    return None


def check_answers():
    """The first problem, or None. The package name is derived from the slug: report the root cause."""
    examples = {
        "project_name": "Digits Classifier",
        "description": "Classifies handwritten digits.",
        "author_name": "Ada Lovelace",
        "author_email": "ada@example.org",
        "version": "0.1.0",
        "python_version": "3.11",
    }
    for field in FREE_TEXT:
        error = check_text(field, ANSWERS[field], examples[field])
        if error:
            return error
    error = check_project_slug(ANSWERS["project_slug"]) or check_package_name(ANSWERS["package_name"])
    if error:
        return error
    if not EMAIL_PATTERN.match(ANSWERS["author_email"]):
        email = ANSWERS["author_email"]
        return problem("author_email", email, "is not an email address", examples["author_email"])
    if not VERSION_PATTERN.match(ANSWERS["version"]):
        return problem("version", ANSWERS["version"], "is not a PEP 440 version", "0.1.0")
    if ANSWERS["python_version"] not in PYTHON_VERSIONS:
        supported = f"one of {', '.join(PYTHON_VERSIONS)} (the stack needs 3.10+)"
        return problem("python_version", ANSWERS["python_version"], f"is not {supported}", "3.11")
    return None


def main() -> int:
    error = check_answers()
    if error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
