"""Print the next steps. Nothing else: no git, no network, so re-running it (e.g. on update) is harmless."""

import json

# Cookiecutter renders this into JSON inside a raw single-quoted string: JSON escapes every ' it holds,
# so any answer is safe here (fmt: skip keeps the formatter from switching to double quotes).
SLUG = json.loads(r'{{ cookiecutter | tojson }}')["project_slug"]  # fmt: skip

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
