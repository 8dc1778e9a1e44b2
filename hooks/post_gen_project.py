"""Remove the files of the options not chosen, and print the next steps.

No git, no network: re-running it (e.g. by `cruft update`) is harmless.
"""

import json
import os
import shutil
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


def project_path() -> str:
    """Where the project is, as the user would type it from the folder they ran cookiecutter in."""
    here = Path.cwd()
    started = Path(os.environ.get("PWD", here.parent))
    relative = os.path.relpath(here, started)
    return relative if not relative.startswith("..") else str(here)


remove(unchosen_files(ANSWERS))
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
"""
)
