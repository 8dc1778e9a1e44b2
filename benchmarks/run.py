"""Benchmark: where the time of the generated project's `python train.py` goes.

Renders the default project into a temporary folder and runs three trainings of the same split, network,
optimizer, batch size and epochs, alternating their order:

- hand: benchmarks/handwritten_loop.py, the plain PyTorch loop a careful engineer writes;
- stock: the project's `train.py` with every extra off (no logger, callbacks, checkpoints, plugins, progress
  bar, model summary; the config's profiler, which records nothing, stays): what Lightning itself costs;
- default: the project's `train.py` with its default config (atomic fsync'd checkpoints, preemption, random
  state, NaN stop, early stopping, TensorBoard, progress bar): what the template's extras cost on top.

Each runs twice, for a short and a long number of epochs; the difference divided by the extra epochs is the
time per epoch (start-up cancels out): what a user waits for, and the measure the target is judged by. The
default less each group of its extras runs the same way, so that each group's cost shows end to end. Each run
also notes its epochs' times from inside (epoch_clock.py), and stock and default run together, taking turns
one epoch each with the default less each group (turns.py): a decomposition inside the runs, which leaves out
what happens between and after epochs (background writes, shutdown), so it is not judged. On a CUDA machine
the three also train in bf16 and report samples/s.

    python benchmarks/run.py                 # full: 5 alternating repeats of 3 and 43 epochs, medians
    python benchmarks/run.py --quick         # smoke run for CI: 1 repeat of 1 and 3 epochs, no targets
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

from turns import (
    EXTRAS,
    ONE_THREAD,
    costs_table,
    epoch_times,
    extras_in,
    lightning_command,
    listed,
    median_epoch,
    ms,
    per_round,
    take_turns,
)

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
TRAIN_SAMPLES = 1257  # the default split's training set

# Issues 12 and 29: the default config at most 1.25x stock Lightning per epoch, end to end (the slope; CPU,
# default example).
MAX_EXTRAS_RATIO = 1.25
MAIN = ("hand", "stock", "default")  # the columns of the main table


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a command to completion; return its wall time and stdout (fail loudly if it fails)."""
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"benchmark: {' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def final_val_acc(out: Path) -> float:
    """The last ``val/acc`` the default run logged to TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = []
    for path in out.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        events += accumulator.Scalars("val/acc")
    return max(events, key=lambda event: event.step).value


def train(kind: str, project: Path, epochs: int, out: Path, extra: tuple[str, ...] = ()) -> dict:
    """One training of ``kind`` (hand, stock, default or a group of EXTRAS off): wall time, epochs run
    (all: early stopping runs, but with patience beyond them), the default's final val accuracy, and the
    time of each epoch as measured inside the run.
    """
    if kind == "hand":
        command = [sys.executable, str(HERE / "handwritten_loop.py"), f"--project={project}"]
        wall, stdout = timed([*command, f"--epochs={epochs}", f"--out={out}", *extra], cwd=project)
        report = json.loads(stdout.splitlines()[-1])
        return {
            "wall": wall,
            "epochs": epochs,
            "val_acc": report["val_acc"],
            "epoch_times": report["epoch_times"],
        }
    marks = out / "epoch_marks.json"
    command = lightning_command(kind, project, epochs, out, marks, *extra)
    wall, _ = timed(command, cwd=project, env={"PYTHONPATH": str(HERE)})
    times = epoch_times(marks)
    accuracy = final_val_acc(out) if kind == "default" else None
    return {"wall": wall, "epochs": len(times), "val_acc": accuracy, "epoch_times": times}


def per_epoch(short: dict, long: dict) -> float:
    """Seconds per epoch: the slope between a short and a long run of the same kind."""
    return (long["wall"] - short["wall"]) / (long["epochs"] - short["epochs"])


def in_run(short: dict, long: dict) -> float:
    """Seconds per epoch inside the long run: the median epoch, the first one (warming up) left out."""
    return statistics.median(long["epoch_times"][1:])


def measure(args: argparse.Namespace, work: Path) -> dict:
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(work / "render")))
    kinds = [*MAIN, *EXTRAS]
    runs: dict[str, list[tuple[dict, dict]]] = {kind: [] for kind in kinds}
    startup, imports, turns = [], [], []
    for repeat in range(args.repeats):
        # The three kinds run one after the other for each length, so that a drift of the machine's speed
        # (minutes long on a shared host) hits them alike; which goes first rotates.
        order = kinds[repeat % len(kinds) :] + kinds[: repeat % len(kinds)]
        done = {kind: {} for kind in kinds}
        for length in ("short", "long"):
            for kind in order:
                done[kind][length] = train(
                    kind, project, getattr(args, length), work / f"{kind}-{repeat}-{length}"
                )
        for kind in kinds:
            runs[kind].append((done[kind]["short"], done[kind]["long"]))
        turns.append(take_turns(project, args.long, work / f"turns-{repeat}"))
        startup.append(timed([sys.executable, "train.py", "--help"], cwd=project)[0])
        imports.append(timed([sys.executable, "-c", "import torch, pytorch_lightning"], cwd=project)[0])
    measured = {
        "runs": runs,
        "turns": turns,
        "extras": extras_in(project),
        "startup": statistics.median(startup),
        "imports": statistics.median(imports),
    }

    import torch

    if torch.cuda.is_available():
        bf16 = {"hand": ("--bf16",), "stock": ("--trainer.precision=bf16-mixed",), "default": ()}
        measured["cuda"] = {
            kind: [train(kind, project, epochs, work / f"cuda-{kind}-{epochs}", bf16[kind])
                   for epochs in (args.short, args.long)]
            for kind in MAIN
        }  # fmt: skip
    return measured


def table(measured: dict, args: argparse.Namespace) -> str:
    runs = measured["runs"]

    def median(kind: str, of) -> float:
        return statistics.median(of(short, long) for short, long in runs[kind])

    wall = {kind: median(kind, lambda short, long: long["wall"]) for kind in MAIN}
    epoch = {kind: median(kind, per_epoch) for kind in MAIN}
    inside = {kind: median(kind, in_run) for kind in MAIN}
    epochs = {kind: median(kind, lambda short, long: long["epochs"]) for kind in MAIN}
    accuracy = {
        kind: runs[kind][0][1]["val_acc"] and median(kind, lambda s, long: long["val_acc"]) for kind in MAIN
    }

    def extras_ratio(of) -> float:
        """default / stock within each repeat (run side by side), median over the repeats."""
        pairs = zip(runs["default"], runs["stock"], strict=True)
        return statistics.median(of(*default) / of(*stock) for default, stock in pairs)

    extras, extras_inside = extras_ratio(per_epoch), extras_ratio(in_run)
    # Taking turns: each default epoch over the stock epoch of the same round.
    turns = measured["turns"]
    by_turns, one_thread = (
        {kind: median_epoch(turns, kind + threads) for kind in ("stock", "default")}
        for threads in ("", ONE_THREAD)
    )
    extras_turns, extras_one_thread = (
        per_round(turns, "default" + threads, "stock" + threads, lambda d, s: d / s)
        for threads in ("", ONE_THREAD)
    )
    startup, imports = measured["startup"], measured["imports"]

    def verdict(ratio: float) -> str:
        return "" if args.quick else (" (meets target)" if ratio <= MAX_EXTRAS_RATIO else " (misses target)")

    def row(measure: str, values: dict, fmt, comparison: str) -> str:
        cells = " | ".join("n/a" if values[kind] is None else fmt(values[kind]) for kind in MAIN)
        return f"| {measure} | {cells} | {comparison} |"

    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, {args.device_name}; {args.repeats} alternating repeats of "
        f"{args.short} and {args.long} epochs, medians (the default/stock ratios: of each repeat's ratio).",
        "",
        "| measure | hand-written loop | stock Lightning | default config | default vs stock |",
        "| --- | --- | --- | --- | --- |",
        row(
            f"end-to-end wall time, {args.long} epochs",
            wall,
            lambda s: f"{s:.2f} s",
            f"ratio {wall['default'] / wall['stock']:.2f}x",
        ),
        row(
            f"time per epoch, end to end (slope from {args.short} to {args.long} epochs; judged)",
            epoch,
            ms,
            f"ratio {extras:.2f}x{verdict(extras)}",
        ),
        row(
            "time per epoch inside the run (median epoch, the first left out)",
            inside,
            ms,
            f"ratio {extras_inside:.2f}x",
        ),
        row(
            "time per epoch, stock and default taking turns epoch by epoch (median, first and last left out)",
            {"hand": None, **by_turns},
            ms,
            f"ratio {extras_turns:.2f}x",
        ),
        row(
            "the same with one intra-op thread each (`OMP_NUM_THREADS=1`), taking turns with the above",
            {"hand": None, **one_thread},
            ms,
            f"ratio {extras_one_thread:.2f}x",
        ),
        row(
            "training throughput",
            {kind: TRAIN_SAMPLES / seconds for kind, seconds in epoch.items()},
            lambda rate: f"{rate:,.0f} samples/s",
            f"hand-written loop vs stock: {epoch['stock'] / epoch['hand']:.2f}x faster per epoch",
        ),
        row("epochs trained (early stopping runs, ends no run)", epochs, lambda n: f"{n:.0f}", ""),
        row("final validation accuracy", accuracy, lambda a: f"{a:.4f}", "stock logs nothing to read"),
        f"| start-up (`train.py --help`) | | {imports:.2f} s (`import torch, pytorch_lightning`) "
        f"| {startup:.2f} s | {startup - imports:+.2f} s over the imports |",
    ]
    if "cuda" in measured:
        rates = {kind: TRAIN_SAMPLES / per_epoch(*pair) for kind, pair in measured["cuda"].items()}
        lines.append(row("CUDA bf16 throughput", rates, lambda rate: f"{rate:,.0f} samples/s", ""))
    lines += [
        "",
        "Where the extras go, end to end: the default with one group of extras turned off ran for both "
        "lengths too; a group's cost is the default's slope less that one's, in the same repeat (median over "
        "repeats).",
        "",
        *slope_costs(runs, measured["extras"]),
        "",
        "Where the extras go inside the runs: with stock and default, the default with one group of "
        "extras turned off took turns too; a group's cost is the default's epoch less that one's, in the "
        "same round.",
        "",
        *costs_table(turns, measured["extras"]),
    ]
    return "\n".join(lines) + "\n"


def slope_costs(runs: dict, extras: dict[str, list[str]]) -> list[str]:
    """Markdown: each group's time per epoch by slope, what it costs (the default's slope less the group's,
    within each repeat, median over repeats) and its share of all the extras (default less stock).
    """

    def saved(kind: str) -> float:
        pairs = zip(runs["default"], runs[kind], strict=True)
        return statistics.median(per_epoch(*default) - per_epoch(*other) for default, other in pairs)

    total = saved("stock")

    def cells(kind: str | None, off: tuple[str, ...]) -> list[str]:
        cost = sum(saved(other) for other in off)
        slope = ms(statistics.median(per_epoch(*pair) for pair in runs[kind])) if kind else ""
        share = ("n/a" if total <= 0 else f"{cost / total:.0%}") if off else ""
        return [slope, ms(cost) if off else "", share]

    rows = [
        ["extras turned off", "time per epoch (slope)", "what they cost an epoch", "share of all the extras"],
        ["---"] * 4,
        ["none: the default config", *cells("default", ())],
        *([f"{group} ({listed(extras[group])})", *cells(group, (group,))] for group in EXTRAS),
        ["the groups above, added up", *cells(None, tuple(EXTRAS))],
        ["all: stock Lightning", *cells("stock", ("stock",))],
    ]
    return ["| " + " | ".join(row) + " |" for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--short", type=int, default=3, help="epochs of the short runs")
    parser.add_argument("--long", type=int, default=43, help="epochs of the long runs")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 1 and 3 epochs; targets not judged")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="where to write the table")
    args = parser.parse_args()
    if args.quick:
        # Three epochs: taking turns, only the middle one runs alone (turns.steady).
        args.repeats, args.short, args.long = 1, 1, 3
    import torch

    args.device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    with tempfile.TemporaryDirectory() as work:
        markdown = table(measure(args, Path(work)), args)
    args.out.write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
