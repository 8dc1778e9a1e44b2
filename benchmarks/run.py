"""Benchmark: where the time of the generated project's `python train.py` goes.

Renders the default project into a temporary folder and runs three trainings of the same split, network,
optimizer, batch size and epochs, alternating their order:

- hand: benchmarks/handwritten_loop.py, the plain PyTorch loop a careful engineer writes;
- stock: the project's `train.py` with every extra off (no logger, callbacks, checkpoints, plugins, progress
  bar, model summary): what Lightning itself costs;
- default: the project's `train.py` with its default config (atomic fsync'd checkpoints, preemption, random
  state, NaN stop, early stopping, TensorBoard, progress bar): what the template's extras cost on top.

Each runs twice, for a short and a long number of epochs; the difference divided by the extra epochs is the
time per epoch (start-up cancels out), and each notes its epochs' times from inside (epoch_clock.py). Stock
and default also run together, taking turns one epoch each, so that the machine's drift hits each pair of
epochs alike. On a CUDA machine the three also train in bf16 and report samples/s.

    python benchmarks/run.py                 # full: 5 alternating repeats of 3 and 23 epochs, medians
    python benchmarks/run.py --quick         # smoke run for CI: 1 repeat of 1 and 2 epochs, no targets
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
TRAIN_SAMPLES = 1257  # the default split's training set

# Issue 12's target: the default config at most 1.25x stock Lightning per epoch (CPU, default example).
MAX_EXTRAS_RATIO = 1.25
# Every extra off; what remains is Lightning's own loop around the same LightningModule.
STOCK = (
    "--trainer.logger=false",
    "--trainer.callbacks=[]",
    "--trainer.enable_checkpointing=false",
    "--trainer.plugins=[]",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
)


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


def epochs_trained(out: Path) -> int:
    """How many epochs the default run trained: early stopping may end it before ``max_epochs``."""
    import torch

    (last,) = out.rglob("last.ckpt")
    return torch.load(last, map_location="cpu", weights_only=True)["epoch"] + 1


def train(kind: str, project: Path, epochs: int, out: Path, extra: tuple[str, ...] = ()) -> dict:
    """One training of ``kind`` (hand, stock or default): wall time, epochs run, final val accuracy, and the
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
    command = lightning_command(kind, epochs, out, marks, *extra)
    out.mkdir(parents=True, exist_ok=True)
    result = {"epochs": epochs, "val_acc": None} if kind == "stock" else {}
    result["wall"], _ = timed(command, cwd=project, env={"PYTHONPATH": str(HERE)})
    if kind == "default":
        result.update(epochs=epochs_trained(out), val_acc=final_val_acc(out))
    return {**result, "epoch_times": epoch_times(marks)}


def lightning_command(kind: str, epochs: int, out: Path, marks: Path, *extra: str) -> list[str]:
    """``python train.py`` as stock or default, writing under ``out``, its epoch clock writing ``marks``."""
    where = (
        (f"--trainer.default_root_dir={out}", *STOCK)
        if kind == "stock"
        else (f"--trainer.logger.init_args.save_dir={out}",)
    )
    clock = ("--trainer.callbacks+=epoch_clock.EpochClock", f"--trainer.callbacks.init_args.path={marks}")
    return [sys.executable, "train.py", f"--trainer.max_epochs={epochs}", *where, *clock, *extra]


def epoch_times(marks: Path) -> list[float]:
    return [end - start for start, end in json.loads(marks.read_text(encoding="utf-8"))]


def take_turns(project: Path, epochs: int, out: Path) -> dict[str, list[float]]:
    """Stock and default started together, taking turns epoch by epoch (``EpochClock(turns=...)``): the
    time of each of their epochs, ``{kind: [seconds, ...]}``. Stock has the first turn.
    """
    to_stock, to_default = os.pipe(), os.pipe()  # (read, write) each
    turns = {"stock": (to_stock[0], to_default[1]), "default": (to_default[0], to_stock[1])}
    processes = {}
    for kind, (read, write) in turns.items():
        turn = f"--trainer.callbacks.init_args.turns={read},{write}"
        command = lightning_command(kind, epochs, out / kind, out / f"{kind}.json", turn)
        processes[kind] = subprocess.Popen(
            command,
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(HERE)},
            pass_fds=(read, write),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    os.write(to_stock[1], b"x")  # stock's turn first
    for fd in (*to_stock, *to_default):
        os.close(fd)
    for kind, process in processes.items():
        _, stderr = process.communicate()
        if process.returncode != 0:
            sys.exit(f"benchmark: {kind} run taking turns failed:\n{stderr[-3000:]}")
    return {kind: epoch_times(out / f"{kind}.json") for kind in turns}


def per_epoch(short: dict, long: dict) -> float:
    """Seconds per epoch: the slope between a short and a long run of the same kind."""
    return (long["wall"] - short["wall"]) / (long["epochs"] - short["epochs"])


def in_run(short: dict, long: dict) -> float:
    """Seconds per epoch inside the long run: the median epoch, the first one (warming up) left out."""
    return statistics.median(long["epoch_times"][1:])


def measure(args: argparse.Namespace, work: Path) -> dict:
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(work / "render")))
    kinds = ["hand", "stock", "default"]
    runs: dict[str, list[tuple[dict, dict]]] = {kind: [] for kind in kinds}
    startup, imports, turns = [], [], []
    for repeat in range(args.repeats):
        # The three kinds run one after the other for each length, so that a drift of the machine's speed
        # (minutes long on a shared host) hits them alike; which goes first rotates.
        order = kinds[repeat % 3 :] + kinds[: repeat % 3]
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
        "startup": statistics.median(startup),
        "imports": statistics.median(imports),
    }

    import torch

    if torch.cuda.is_available():
        bf16 = {"hand": ("--bf16",), "stock": ("--trainer.precision=bf16-mixed",), "default": ()}
        measured["cuda"] = {
            kind: [train(kind, project, epochs, work / f"cuda-{kind}-{epochs}", bf16[kind])
                   for epochs in (args.short, args.long)]
            for kind in kinds
        }  # fmt: skip
    return measured


def table(measured: dict, args: argparse.Namespace) -> str:
    runs = measured["runs"]

    def median(kind: str, of) -> float:
        return statistics.median(of(short, long) for short, long in runs[kind])

    wall = {kind: median(kind, lambda short, long: long["wall"]) for kind in runs}
    epoch = {kind: median(kind, per_epoch) for kind in runs}
    inside = {kind: median(kind, in_run) for kind in runs}
    epochs = {kind: median(kind, lambda short, long: long["epochs"]) for kind in runs}
    accuracy = {
        kind: runs[kind][0][1]["val_acc"] and median(kind, lambda s, long: long["val_acc"]) for kind in runs
    }

    def extras_ratio(of) -> float:
        """default / stock within each repeat (run side by side), median over the repeats."""
        pairs = zip(runs["default"], runs["stock"], strict=True)
        return statistics.median(of(*default) / of(*stock) for default, stock in pairs)

    extras, extras_inside = extras_ratio(per_epoch), extras_ratio(in_run)
    # Taking turns: each default epoch over the stock epoch just before it, the first (warming up) left
    # out; the median of those, then over the repeats.
    turns = measured["turns"]
    by_turns = {
        kind: statistics.median(statistics.median(repeat[kind][1:]) for repeat in turns)
        for kind in ("stock", "default")
    }
    pairs = (zip(repeat["stock"][1:], repeat["default"][1:], strict=False) for repeat in turns)
    extras_turns = statistics.median(statistics.median(d / s for s, d in pair) for pair in pairs)
    startup, imports = measured["startup"], measured["imports"]

    def verdict(ratio: float) -> str:
        return "" if args.quick else (" (meets target)" if ratio <= MAX_EXTRAS_RATIO else " (misses target)")

    def row(measure: str, values: dict, fmt, comparison: str) -> str:
        cells = " | ".join("n/a" if values[kind] is None else fmt(values[kind]) for kind in runs)
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
            f"time per epoch (slope from {args.short} to {args.long} epochs)",
            epoch,
            lambda s: f"{s * 1000:.1f} ms",
            f"ratio {extras:.2f}x{verdict(extras)}",
        ),
        row(
            "time per epoch inside the run (median epoch, the first left out)",
            inside,
            lambda s: f"{s * 1000:.1f} ms",
            f"ratio {extras_inside:.2f}x{verdict(extras_inside)}",
        ),
        row(
            "time per epoch, stock and default taking turns epoch by epoch (median, the first left out)",
            {"hand": None, **by_turns},
            lambda s: f"{s * 1000:.1f} ms",
            f"ratio {extras_turns:.2f}x{verdict(extras_turns)}",
        ),
        row(
            "training throughput",
            {kind: TRAIN_SAMPLES / seconds for kind, seconds in epoch.items()},
            lambda rate: f"{rate:,.0f} samples/s",
            f"hand-written loop vs stock: {epoch['stock'] / epoch['hand']:.2f}x faster per epoch",
        ),
        row("epochs trained (early stopping may end sooner)", epochs, lambda n: f"{n:.0f}", ""),
        row("final validation accuracy", accuracy, lambda a: f"{a:.4f}", "stock logs nothing to read"),
        f"| start-up (`train.py --help`) | | {imports:.2f} s (`import torch, pytorch_lightning`) "
        f"| {startup:.2f} s | {startup - imports:+.2f} s over the imports |",
    ]
    if "cuda" in measured:
        rates = {kind: TRAIN_SAMPLES / per_epoch(*pair) for kind, pair in measured["cuda"].items()}
        lines.append(row("CUDA bf16 throughput", rates, lambda rate: f"{rate:,.0f} samples/s", ""))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--short", type=int, default=3, help="epochs of the short runs")
    parser.add_argument("--long", type=int, default=23, help="epochs of the long runs")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 1 and 2 epochs; targets not judged")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="where to write the table")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.short, args.long = 1, 1, 2
    import torch

    args.device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    with tempfile.TemporaryDirectory() as work:
        markdown = table(measure(args, Path(work)), args)
    args.out.write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
