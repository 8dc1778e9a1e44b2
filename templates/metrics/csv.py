"""Read back what the CSV logger wrote: the metrics.csv of one run folder."""

from __future__ import annotations

import csv
from pathlib import Path

# CSVLogger deletes an existing metrics.csv when a run folder is reused, so a resumed run gets a new one.
RESUME_CONTINUES_RUN = False
# A resumed run starts a new metrics.csv: the killed run's rows stay in the old folder.
REPLAYED_STEPS_DISCARDED = False


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All metrics of one run directory, as ``{name: [(step, value), ...]}`` ordered by step."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            step = int(row.pop("step"))
            for name, value in row.items():
                if value != "":
                    scalars.setdefault(name, []).append((step, float(value)))
    return {name: sorted(points) for name, points in scalars.items()}


def read_commit(run_dir: Path) -> str:
    """The git commit of the run, from the hyperparameters the CSV logger wrote (hparams.yaml)."""
    import yaml

    return yaml.safe_load((run_dir / "hparams.yaml").read_text(encoding="utf-8"))["git_commit"]
