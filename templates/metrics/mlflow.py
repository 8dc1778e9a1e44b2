"""Read back what the MLflow logger wrote, through the MLflow client on the local file store."""

from __future__ import annotations

import os
from pathlib import Path

# Resuming with --ckpt_path last continues the same MLflow run (same run id).
RESUME_CONTINUES_RUN = True
# MLflow keeps every value logged: steps an interrupted run logged after its checkpoint appear twice.
REPLAYED_STEPS_DISCARDED = False


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All metrics of one run, as ``{name: [(step, value), ...]}`` ordered by step.

    ``run_dir`` is ``<file store>/<experiment id>/<run id>``, the folder that also holds ``checkpoints/``.
    """
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=run_dir.parents[1].resolve().as_uri())
    run_id = run_dir.name
    return {
        name: sorted((metric.step, metric.value) for metric in client.get_metric_history(run_id, name))
        for name in client.get_run(run_id).data.metrics
    }


def read_commit(run_dir: Path) -> str:
    """The git commit of the run's latest attempt, as the MLflow UI shows it (a tag)."""
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=run_dir.parents[1].resolve().as_uri())
    return client.get_run(run_dir.name).data.tags["mlflow.source.git.commit"]
