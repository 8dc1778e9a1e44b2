"""Remove the folders of options not chosen, and print the next steps.

No git, no network, nothing deleted that is not empty: re-running it (e.g. by `cruft update`) is harmless.
"""

import json
from pathlib import Path

# Cookiecutter renders this into JSON inside a raw single-quoted string: JSON escapes every ' it holds,
# so any answer is safe here (fmt: skip keeps the formatter from switching to double quotes).
ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')  # fmt: skip
SLUG = ANSWERS["project_slug"]

# Files of an option not chosen are skipped by their conditional names, but cookiecutter cannot skip a
# folder that way (an empty folder name renders its files into the parent), so their folders stay behind
# empty. Deepest first; a folder holding anything is kept.
OPTION_FOLDERS = [".github/workflows", ".github", "scripts/slurm", "scripts"]

# How to look at the curves, for each logger.
WATCH = {
    "tensorboard": "tensorboard --logdir logs        # watch the curves",
    "csv": "# metrics: logs/<experiment>/version_N/metrics.csv",
    "mlflow": "mlflow ui --backend-store-uri logs/mlruns   # browse the runs (pip install mlflow)",
    "wandb": "wandb sync logs/wandb/offline-run-*   # upload offline runs after `wandb login`",
}


def remove_empty_option_folders() -> None:
    for folder in map(Path, OPTION_FOLDERS):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


remove_empty_option_folders()
print(
    f"""
Created {SLUG}/. Next steps:

    cd {SLUG}
    python -m venv .venv && source .venv/bin/activate
    pip install -e ".[dev]"
    python train.py                  # train with configs/config.yaml
    {WATCH[ANSWERS["logger"]]}
    pytest                           # the project's own tests
"""
)
