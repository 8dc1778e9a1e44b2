"""Remove the folders of options not chosen, and print the next steps.

No git, no network, nothing deleted that is not empty: re-running it (e.g. by `cruft update`) is harmless.
"""

from pathlib import Path

import json

# Cookiecutter renders this into JSON inside a raw single-quoted string: JSON escapes every ' it holds,
# so any answer is safe here (fmt: skip keeps the formatter from switching to double quotes).
SLUG = json.loads(r'{{ cookiecutter | tojson }}')["project_slug"]  # fmt: skip

# Files of an option not chosen are skipped by their conditional names, but cookiecutter cannot skip a
# folder that way (an empty folder name renders its files into the parent), so their folders stay behind
# empty. Deepest first; a folder holding anything is kept.
OPTION_FOLDERS = [".github/workflows", ".github", "scripts/slurm", "scripts"]
for folder in map(Path, OPTION_FOLDERS):
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()

print(
    f"""
Created {SLUG}/. Next steps:

    cd {SLUG}
    python -m venv .venv && source .venv/bin/activate
    pip install -e ".[dev]"
    python train.py                  # train with configs/config.yaml
{%- if cookiecutter.logger == "tensorboard" %}
    tensorboard --logdir logs        # watch the curves
{%- elif cookiecutter.logger == "mlflow" %}
    mlflow ui --backend-store-uri logs/mlruns   # browse the runs (needs `pip install mlflow`)
{%- elif cookiecutter.logger == "csv" %}
    # metrics: logs/<experiment>/version_N/metrics.csv
{%- elif cookiecutter.logger == "wandb" %}
    wandb sync logs/wandb/offline-run-*   # upload offline runs after `wandb login`
{%- endif %}
    pytest                           # the project's own tests
"""
)
