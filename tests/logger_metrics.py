"""Read the metrics of a generated project's run back through each logger's own format or client."""

from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path


def tensorboard(log_dir: Path, experiment: str) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics: dict[str, list[tuple[int, float]]] = {}
    for events in (log_dir / experiment).rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            metrics.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return {tag: [value for _, value in sorted(points)] for tag, points in metrics.items()}


def csv_logger(log_dir: Path, experiment: str) -> dict[str, list[float]]:
    metrics: dict[str, list[float]] = {}
    for path in sorted((log_dir / experiment).rglob("metrics.csv")):
        with open(path, newline="", encoding="utf-8") as file:
            for row in csv.DictReader(file):
                for name, value in row.items():
                    if value != "" and name not in ("step", "epoch"):
                        metrics.setdefault(name, []).append(float(value))
    return metrics


def mlflow(log_dir: Path, experiment: str) -> dict[str, list[float]]:
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(log_dir / "mlruns").resolve().as_uri())
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r} in {log_dir / 'mlruns'}"
    metrics: dict[str, list[float]] = {}
    for run in client.search_runs([found.experiment_id]):
        for name in run.data.metrics:
            history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
            metrics.setdefault(name, []).extend(metric.value for metric in history)
    return metrics


def wandb_run_file():
    """The generated projects' reader of .wandb files (no template markers in it): shared, not copied."""
    path = Path(__file__).resolve().parents[1] / "templates" / "metrics" / "wandb.py"
    spec = importlib.util.spec_from_file_location("wandb_run_file", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wandb(log_dir: Path, experiment: str) -> dict[str, list[float]]:
    metrics: dict[str, list[float]] = {}
    reader = wandb_run_file()
    run_files = (log_dir / "wandb").glob("offline-run-*/run-*.wandb")
    run_ids = sorted({reader.run_id(path.parent) for path in run_files})
    assert run_ids, f"no offline W&B run in {log_dir / 'wandb'}"
    for run_id in run_ids:
        for name, points in reader.read_scalars(log_dir / experiment / run_id).items():
            if name != "epoch":
                metrics.setdefault(name, []).extend(value for _, value in points)
    return metrics


READERS = {
    "tensorboard": tensorboard,
    "csv": csv_logger,
    "mlflow": mlflow,
    "wandb": wandb,
}
