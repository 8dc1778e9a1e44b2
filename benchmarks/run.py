"""Benchmark: the generated project's `python train.py` against a hand-written PyTorch loop.

Renders the default project into a temporary folder, then alternately runs its real entry point (default
config: checkpoints, TensorBoard, early stopping, progress bar all on) and benchmarks/handwritten_loop.py on
the same split, network, optimizer, batch size and epochs. Reports medians, ratios, per-epoch overhead,
samples/s, start-up time and the final validation accuracy of both, and writes a Markdown table.

    python benchmarks/run.py                 # full: 5 alternating repeats of 20 epochs
    python benchmarks/run.py --quick         # smoke run for CI: 1 repeat of 2 epochs, no targets judged
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

# The targets of the issue that asked for this benchmark (CPU, default digits example).
MAX_RATIO, MAX_EPOCH_OVERHEAD_S, MAX_STARTUP_GAP_S, MAX_ACC_GAP = 1.15, 0.02, 0.3, 0.01


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    """Run a command to completion; return its wall time and stdout (fail loudly if it fails)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"benchmark: {' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def epoch_walls(run_dir: Path) -> tuple[list[float], float]:
    """Per-epoch wall times (between consecutive val/acc events) and the last val/acc of a Lightning run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = []
    for path in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        events += accumulator.Scalars("val/acc")
    events.sort(key=lambda event: event.step)
    return [b.wall_time - a.wall_time for a, b in zip(events, events[1:], strict=False)], events[-1].value


def run_lightning(project: Path, epochs: int, out: Path, extra: list[str]) -> dict:
    wall, _ = timed(
        [
            sys.executable,
            "train.py",
            f"--trainer.max_epochs={epochs}",
            f"--trainer.logger.init_args.save_dir={out}",
            *extra,
        ],
        cwd=project,
    )
    runs = list((out / "digits-classifier").glob("version_*"))
    epoch_times, val_acc = epoch_walls(runs[0])
    return {"wall": wall, "epoch_times": epoch_times, "val_acc": val_acc, "epochs": len(epoch_times) + 1}


def run_handwritten(project: Path, epochs: int, out: Path, extra: list[str]) -> dict:
    command = [
        sys.executable,
        str(HERE / "handwritten_loop.py"),
        f"--project={project}",
        f"--epochs={epochs}",
    ]
    wall, stdout = timed([*command, f"--out={out}", *extra], cwd=project)
    result = json.loads(stdout.strip().splitlines()[-1])
    return {
        "wall": wall,
        "epoch_times": result["epoch_times"][1:],  # epochs 2..N, as for Lightning
        "val_acc": result["val_acc"],
        "epochs": epochs,
    }


def steady_epoch(result: dict) -> float:
    """Median epoch time. Both runners report epochs 2..N only: the first pays for warm-up, and Lightning's
    epoch times are gaps between consecutive validation events."""
    return statistics.median(result["epoch_times"])


def render_project(folder: Path) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(folder)))


def measure(args: argparse.Namespace, work: Path) -> dict:
    project = render_project(work / "render")
    lightning, handwritten, help_times, import_times = [], [], [], []
    for repeat in range(args.repeats):
        # Alternate which goes first, so neither always meets a warm or a cold disk cache.
        order = [("lightning", run_lightning), ("handwritten", run_handwritten)]
        for name, runner in order if repeat % 2 == 0 else order[::-1]:
            result = runner(project, args.epochs, work / f"{name}-{repeat}", [])
            (lightning if name == "lightning" else handwritten).append(result)
        help_times.append(timed([sys.executable, "train.py", "--help"], cwd=project)[0])
        import_times.append(timed([sys.executable, "-c", "import torch, pytorch_lightning"], cwd=project)[0])

    measured = {
        "lightning": lightning,
        "handwritten": handwritten,
        "help": statistics.median(help_times),
        "import_floor": statistics.median(import_times),
        "train_samples": 1257,
    }
    import torch

    if torch.cuda.is_available():
        epochs = args.epochs
        measured["cuda"] = {
            "lightning bf16-mixed": run_lightning(project, epochs, work / "cuda-l-bf16", []),
            "lightning 32-true": run_lightning(
                project, epochs, work / "cuda-l-32", ["--trainer.precision=32-true"]
            ),
            "handwritten bf16": run_handwritten(project, epochs, work / "cuda-h-bf16", ["--bf16"]),
            "handwritten fp32": run_handwritten(project, epochs, work / "cuda-h-32", []),
        }
    return measured


def table(measured: dict, args: argparse.Namespace) -> str:
    light, hand = measured["lightning"], measured["handwritten"]
    wall_l = statistics.median(r["wall"] for r in light)
    wall_h = statistics.median(r["wall"] for r in hand)
    epoch_l = statistics.median(steady_epoch(r) for r in light)
    epoch_h = statistics.median(steady_epoch(r) for r in hand)
    acc_l = statistics.median(r["val_acc"] for r in light)
    acc_h = statistics.median(r["val_acc"] for r in hand)
    samples = measured["train_samples"]
    ratio, overhead = wall_l / wall_h, (wall_l - wall_h) / args.epochs
    startup, floor = measured["help"], measured["import_floor"]
    startup_gap = startup - floor

    def verdict(ok: bool) -> str:
        return "" if args.quick else (" (meets target)" if ok else " (misses target)")

    epochs_run = sorted({r["epochs"] for r in light})
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, {args.device_name}; {args.repeats} alternating repeats of "
        f"{args.epochs} epochs (Lightning ran {', '.join(map(str, epochs_run))} epochs), medians.",
        "",
        "| measure | generated project (`python train.py`) | hand-written loop | comparison |",
        "| --- | --- | --- | --- |",
        f"| end-to-end wall time | {wall_l:.2f} s | {wall_h:.2f} s | ratio {ratio:.2f}x, "
        f"{overhead:+.3f} s per epoch{verdict(ratio <= MAX_RATIO or overhead <= MAX_EPOCH_OVERHEAD_S)} |",
        f"| steady-state epoch (train + val + checkpoint + logging) | {epoch_l * 1000:.1f} ms | "
        f"{epoch_h * 1000:.1f} ms | {(epoch_l - epoch_h) * 1000:+.1f} ms per epoch"
        f"{verdict(epoch_l - epoch_h <= MAX_EPOCH_OVERHEAD_S)} |",
        f"| training throughput | {samples / epoch_l:,.0f} samples/s | {samples / epoch_h:,.0f} samples/s | "
        f"{epoch_h / epoch_l:.2f}x |",
        f"| start-up: `train.py --help` vs `import torch, pytorch_lightning` | {startup:.2f} s | "
        f"{floor:.2f} s | {startup_gap:+.2f} s{verdict(startup_gap <= MAX_STARTUP_GAP_S)} |",
        f"| final validation accuracy | {acc_l:.4f} | {acc_h:.4f} | {acc_l - acc_h:+.4f}"
        f"{verdict(abs(acc_l - acc_h) <= MAX_ACC_GAP)} |",
    ]
    for name, result in measured.get("cuda", {}).items():
        throughput = samples / steady_epoch(result)
        lines.append(f"| CUDA {name} | {throughput:,.0f} samples/s | | val acc {result['val_acc']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="1 repeat of 2 epochs; targets not judged")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="where to write the table")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.epochs = 1, 3
    import torch

    args.device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    with tempfile.TemporaryDirectory() as work:
        markdown = table(measure(args, Path(work)), args)
    args.out.write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
