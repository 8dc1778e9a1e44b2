"""Print the next steps. Nothing else: no git, no network, so re-running it (e.g. on update) is harmless."""

SLUG = {{ cookiecutter.project_slug | tojson }}

print(
    f"""
Created {SLUG}/. Next steps:

    cd {SLUG}
    python -m venv .venv && source .venv/bin/activate
    pip install -e ".[dev]"
    python train.py                  # train with configs/config.yaml
    tensorboard --logdir logs        # watch the curves
    pytest                           # the project's own tests
"""
)
