"""Remove the files of the options not chosen, link the project to the template, and print the next steps.

The link is the `.cruft.json` that `cruft create` would write (template, commit, answers), written when the
template is a git checkout, so that a project made with plain `cookiecutter` takes in the template's later
changes with `cruft update`. It only reads the template's git state, never the network. When cruft renders
(`cruft create`, or the two renders of `cruft update`), cruft writes that file and the hook leaves git
alone: re-running it is harmless.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

# Cookiecutter renders this into JSON inside a raw single-quoted string: JSON escapes every ' it holds,
# so any answer is safe here (fmt: skip keeps the formatter from switching to double quotes).
ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')  # fmt: skip

# The files and folders that belong to each value of an option. Those of the values not chosen are
# removed, except what a chosen value also lists. The template's tests read this table: keep it literal.
OPTION_FILES = {
    "example": {
        "digits": ["{package}/data/digits.py", "{package}/models/mlp.py"],
        "mnist": [
            "{package}/data/mnist.py",
            "{package}/data/mnist_files.py",
            "{package}/models/cnn.py",
            "tests/test_mnist.py",
        ],
        "folder": [
            "{package}/data/folder.py",
            "{package}/data/images.py",
            "{package}/data/image_cache.py",
            "{package}/data/pixels.py",
            "{package}/data/shards.py",
            "{package}/models/cnn.py",
            "tests/test_folder.py",
            "tests/test_image_cache.py",
            "tests/test_shards.py",
        ],
        "diabetes": ["{package}/data/diabetes.py", "{package}/models/mlp.py"],
        "tokens": ["{package}/data/tokens.py", "{package}/models/gru.py"],
    },
    "ci": {"github": [".github"], "gitlab": [".gitlab-ci.yml"], "none": []},
    "docker": {True: ["Dockerfile", ".dockerignore"], False: []},
    "slurm": {True: ["scripts/slurm"], False: []},
    "license": {
        "MIT": ["LICENSE"],
        "Apache-2.0": ["LICENSE"],
        "BSD-3-Clause": ["LICENSE"],
        "Proprietary": [],
    },
}

# How to look at the curves, for each logger.
WATCH = {
    "tensorboard": "tensorboard --logdir logs        # watch the curves",
    "csv": "# metrics: logs/<experiment>/version_N/metrics.csv",
    "mlflow": "mlflow ui --backend-store-uri logs/mlruns   # browse the runs (pip install mlflow)",
    "wandb": "wandb sync logs/wandb/offline-run-*   # upload offline runs after `wandb login`",
}


def unchosen_files(answers: dict) -> set[str]:
    """The paths of every option's values not chosen, less those a chosen value needs too."""
    unchosen, chosen = set(), set()
    for option, files_of in OPTION_FILES.items():
        for value, files in files_of.items():
            (chosen if value == answers[option] else unchosen).update(files)
    return {path.format(package=answers["package_name"]) for path in unchosen - chosen}


def remove(paths: set[str]) -> None:
    for path in map(Path, sorted(paths)):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


# What cookiecutter adds to the answers about this machine's folders: not part of the project's record.
MACHINE_ANSWERS = ("_output_dir", "_repo_dir", "_checkout")


def git(folder: Path, *args: str) -> str:
    """What ``git <args>`` prints in ``folder``; raises if git is missing or fails."""
    command = ["git", "-C", str(folder), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def from_shell(path: str) -> Path:
    """A path cookiecutter was given, from the folder it was started in (the shell's)."""
    given = Path(path).expanduser()
    return given if given.is_absolute() else Path(os.environ.get("PWD", os.getcwd())) / given


def link_to_template(answers: dict) -> str:
    """Write .cruft.json as `cruft create` would, if the template is a git checkout; what to tell the user."""
    folder = from_shell(answers["_repo_dir"])
    try:
        top = Path(git(folder, "rev-parse", "--show-toplevel")).resolve()
        commit = git(folder, "rev-parse", "HEAD")
        uncommitted = git(top, "status", "--porcelain")
        # A local template is recorded as its folder; one cookiecutter cloned, as the URL it cloned.
        local = from_shell(answers["_template"]).is_dir()
        template = str(top) if local else git(top, "remote", "get-url", "origin")
    except (OSError, subprocess.SubprocessError):
        return "The template is not a git checkout: to take in its later changes, use `cruft link <its URL>`."
    directory = folder.resolve().relative_to(top).as_posix()
    context = {key: value for key, value in answers.items() if key not in MACHINE_ANSWERS}
    context |= {"_template": template, "_commit": commit}
    state = {
        "template": template,
        "commit": commit,
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": context},
        "directory": None if directory == "." else directory,
    }
    text = json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"
    Path(".cruft.json").write_text(text, encoding="utf-8")
    note = f"Linked to the template at commit {commit[:12]} (.cruft.json): `cruft update` brings its changes."
    if uncommitted:
        note += " The template had uncommitted changes: an update will treat them as yours."
    return note


def project_path() -> str:
    """Where the project is, as the user would type it from the folder they ran cookiecutter in."""
    here = Path.cwd()
    started = Path(os.environ.get("PWD", here.parent))
    relative = os.path.relpath(here, started)
    return relative if not relative.startswith("..") else str(here)


remove(unchosen_files(ANSWERS))
# cruft renders with its own record of the template, which holds the commit: it writes .cruft.json itself.
link = f"\n{link_to_template(ANSWERS)}\n" if "_commit" not in ANSWERS else ""
first_data = (
    f"\n    python -m {ANSWERS['package_name']}.data.folder data/images"
    "   # sample images; or put yours in data/images/<class name>/"
    if ANSWERS["example"] == "folder"
    else ""
)
print(
    f"""
Created {project_path()}/. Next steps:

    cd {project_path()}
    python -m venv .venv && source .venv/bin/activate
    pip install -e ".[dev]"{first_data}
    python train.py                  # train with configs/config.yaml
    {WATCH[ANSWERS["logger"]]}
    pytest                           # the project's own tests
{link}"""
)
