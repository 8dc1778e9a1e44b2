"""Benchmark: what recording a run's provenance (provenance.json, issue 30) adds to the start of a run.

Renders the default project into a temporary git repository and measures, in one run:

- inside a process, each part of what a run records at its start and end, the median of many repeats:
  the git state (committed, then with a tracked file changed and a new module, which adds the patch), the
  installed distributions and versions, the hardware, and a whole attempt (all of it, written to disk and
  closed), for a real Trainer with the project's logger;
- end to end, `python train.py fit` for one epoch, as generated and with the recording replaced by nothing,
  taking turns, the median of each and of the pairs' differences: what a user waits for.

Nothing is recorded per epoch: the recording runs at the start and at the end of a run.

    python benchmarks/provenance.py            # 7 pairs of runs, 50 repeats of each part
    python benchmarks/provenance.py --quick    # smoke run for CI: 1 pair, 3 repeats
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
PACKAGE = "digits_classifier"
FIT = ["fit", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]

# Run inside the rendered project: times each part of the recording, prints the medians in ms as JSON.
PARTS = """
import json, statistics, sys, tempfile, time
from pathlib import Path
import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger
from {package}.infra.command import code_version, provenance, record

repeats = int(sys.argv[1])
folder = Path(tempfile.mkdtemp())
trainer = pl.Trainer(accelerator="cpu", logger=TensorBoardLogger(folder), enable_progress_bar=False)
version = code_version.code_version()


def attempt():
    run = Path(tempfile.mkdtemp(dir=folder))
    recorded = provenance.Attempt("fit", sys.argv[1:], code_version.code_version(), None)
    record.tag_loggers(trainer, recorded.start(trainer, run))
    recorded.end(trainer, "completed")


parts = {{
    "git state": code_version.code_version,
    "distributions and versions": provenance.software,
    "hardware": lambda: provenance.hardware(trainer),
    "a whole attempt, written": attempt,
}}
times = {{}}
for name, part in parts.items():
    part()  # once before timing: caches, imports
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        part()
        samples.append(time.perf_counter() - started)
    times[name] = 1000 * statistics.median(samples)
print(json.dumps({{"times": times, "dirty": version.dirty, "patch": len(version.patch)}}))
"""

# train.py with the recording replaced by nothing: no git, no provenance.json, no logger tags.
WITHOUT = """
import runpy, sys
from {package}.infra.command import cli, code_version, provenance, record

cli.code_version = code_version.CodeVersion
summary = dict(run="", attempt=1, commit=None, branch=None, dirty=None, why="benchmark", started="")
provenance.Attempt.start = lambda self, trainer, run: summary
provenance.Attempt.end = lambda self, trainer, outcome: None
record.tag_loggers = lambda trainer, summary: None
sys.argv[0] = "train.py"
runpy.run_path("train.py", run_name="__main__")
"""


def run(command: list[str], cwd: Path) -> tuple[float, str]:
    """Run ``command`` to completion in ``cwd``; its wall time and output. Fails loudly."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"benchmark: {' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def git(project: Path, *args: str) -> None:
    identity = ["-c", "user.name=Benchmark", "-c", "user.email=benchmark@example.com"]
    run(["git", *identity, *args], project)


def render(folder: Path) -> Path:
    """The default project, rendered into ``folder`` and committed to a git repository of its own."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(folder)))
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "generated")
    (project / "without.py").write_text(WITHOUT.format(package=PACKAGE), encoding="utf-8")
    (project / "parts.py").write_text(PARTS.format(package=PACKAGE), encoding="utf-8")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "benchmark scripts")
    return project


def parts(project: Path, repeats: int) -> dict:
    """The medians of each part, in ms, measured in a process of the project."""
    return json.loads(run([sys.executable, "parts.py", str(repeats)], project)[1].splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 pair of runs, 3 repeats of each part")
    parser.add_argument("--out", type=Path, default=HERE / "PROVENANCE.md")
    options = parser.parse_args()
    pairs, repeats = (1, 3) if options.quick else (7, 50)
    with tempfile.TemporaryDirectory() as scratch:
        project = render(Path(scratch))
        committed = parts(project, repeats)
        with open(project / "train.py", "a", encoding="utf-8") as file:
            file.write("# a change not committed yet\n")
        (project / PACKAGE / "helper.py").write_text('"""Not committed yet."""\n', encoding="utf-8")
        dirty = parts(project, repeats)
        assert dirty["dirty"] and dirty["patch"] > 0 and committed["dirty"] is False
        walls: dict[str, list[float]] = {"as generated": [], "recording nothing": []}
        for turn in range(pairs):
            # Alternating which goes first, so that a drift of the machine's speed hits both alike.
            order = list(walls) if turn % 2 == 0 else list(reversed(walls))
            for kind in order:
                script = "train.py" if kind == "as generated" else "without.py"
                walls[kind].append(run([sys.executable, script, *FIT], project)[0])
    pairs_run = zip(walls["as generated"], walls["recording nothing"], strict=True)
    differences = [1000 * (generated - nothing) for generated, nothing in pairs_run]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} CPU cores, Python"
        f" {platform.python_version()}; {repeats} repeats of each part (medians), {pairs} pair(s) of runs.",
        "",
        "| part of the recording | committed code | with uncommitted changes |",
        "| --- | --- | --- |",
        *(
            f"| {name} | {committed['times'][name]:.1f} ms | {dirty['times'][name]:.1f} ms |"
            for name in committed["times"]
        ),
        "",
        "| `python train.py fit`, 1 epoch, uncommitted changes | wall time (median) |",
        "| --- | --- |",
        *(f"| {kind} | {statistics.median(times):.2f} s |" for kind, times in walls.items()),
        f"| difference, median of the pairs | {statistics.median(differences):.0f} ms"
        f" ({min(differences):.0f} to {max(differences):.0f} ms) |",
    ]
    options.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
