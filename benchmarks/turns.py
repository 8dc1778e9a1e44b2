"""Lightning runs taking turns epoch by epoch: stock, default, and the default with each group of extras off.

Every run of a repeat starts at once; they form a ring of pipes and each waits for the one before it to end
an epoch before it starts its own (``EpochClock(turns=...)``). One round of the ring takes under a second,
over which the machine's speed barely drifts (it drifts by up to 1.5x over minutes), so the epochs of one
round compare fairly: default with stock, and default with the default less one group of extras,
which is what that group costs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent

# Every extra off; what remains is Lightning's own loop around the same LightningModule. The config's
# profiler stays: it records nothing, and makes stock's hook calls cheaper too, so the ratio is the stricter.
STOCK = (
    "--trainer.logger=false",
    "--trainer.callbacks=[]",
    "--trainer.enable_checkpointing=false",
    "--trainer.plugins=[]",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
)
# The default config's per-epoch extras in groups: the callbacks each drops, by class name, and the trainer
# settings it changes; OTHERS drops every callback that no other group names. The model summary is left
# out: it costs once, at start-up.
OTHERS = "other callbacks"
EXTRAS: dict[str, tuple[set[str], dict]] = {
    "checkpoints": ({"ModelCheckpoint", "LastCheckpoint"}, {"enable_checkpointing": False}),
    "logger": ({"LearningRateMonitor"}, {"logger": False}),  # the monitor needs a logger
    "progress bar": ({"ProgressBar"}, {"enable_progress_bar": False}),
    OTHERS: (set(), {}),
}
KINDS = ("stock", "default", *EXTRAS)
# Torch runs one intra-op thread per core; the extras' own threads (the checkpoint writer, TensorBoard's
# writer) then take a core from one of them, and every parallel operation waits for it. Every kind also
# takes turns with one intra-op thread, which shows what that costs.
ONE_THREAD = ", one intra-op thread"
THREADS = {"": {}, ONE_THREAD: {"OMP_NUM_THREADS": "1"}}  # name suffix: environment
MEASURES = ("time per epoch", "what they cost an epoch", "share of all the extras")
RING = {kind + threads: (kind, environment) for threads, environment in THREADS.items() for kind in KINDS}


def class_name(callback: dict) -> str:
    return callback["class_path"].rsplit(".", 1)[-1]


def trainer_config(project: Path) -> dict:
    return yaml.safe_load((project / "configs" / "config.yaml").read_text(encoding="utf-8"))["trainer"]


def extras_in(project: Path) -> dict[str, list[str]]:
    """The class names that each group of extras turns off, as the project's config lists them."""
    return extras_of(trainer_config(project))


def extras_of(trainer: dict) -> dict[str, list[str]]:
    """The class names that each group of extras turns off, in the ``trainer`` section of a config."""
    callbacks = [class_name(callback) for callback in trainer["callbacks"]]
    groups = {group: [name for name in callbacks if name in names] for group, (names, _) in EXTRAS.items()}
    named = set().union(*groups.values())
    groups[OTHERS] = [name for name in callbacks if name not in named]
    if trainer.get("logger"):
        groups["logger"].insert(0, class_name(trainer["logger"]))
    return groups


def without(group: str | None, project: Path, out: Path, epochs: int) -> Path:
    """A config file that, read after configs/config.yaml, turns ``group`` of the extras off (None: none).

    Early stopping gets more patience than ``epochs``: it still runs, and costs, every epoch, but never ends
    a run sooner, which would shorten its slope and leave the others taking turns without it. (Lightning's
    ``min_epochs`` would keep the run going too, but once early stopping has asked to stop, Lightning logs
    every step.)
    """
    trainer = trainer_config(project)
    dropped = extras_of(trainer)[group] if group else []
    callbacks = [c for c in trainer["callbacks"] if class_name(c) not in dropped]
    for callback in callbacks:
        if class_name(callback).endswith("EarlyStopping"):
            callback.setdefault("init_args", {})["patience"] = epochs + 1
    settings = {"callbacks": callbacks, **(EXTRAS[group][1] if group else {})}
    path = out / f"without {group or 'anything'}.yaml"
    path.write_text(yaml.safe_dump({"trainer": settings}), encoding="utf-8")
    return path


def lightning_command(
    kind: str, project: Path, epochs: int, out: Path, marks: Path, *extra: str
) -> list[str]:
    """``python train.py`` as ``kind`` (one of KINDS), writing under ``out`` and its epochs in ``marks``."""
    out.mkdir(parents=True, exist_ok=True)
    if kind == "stock":
        where = (f"--trainer.default_root_dir={out}", *STOCK)
    else:
        group = None if kind == "default" else kind
        logs = "default_root_dir" if group and "logger" in EXTRAS[group][1] else "logger.init_args.save_dir"
        where = (f"--config={without(group, project, out, epochs)}", f"--trainer.{logs}={out}")
    clock = ("--trainer.callbacks+=epoch_clock.EpochClock", f"--trainer.callbacks.init_args.path={marks}")
    return [sys.executable, "train.py", f"--trainer.max_epochs={epochs}", *where, *clock, *extra]


def epoch_times(marks: Path) -> list[float]:
    """The time of each epoch that an EpochClock noted in ``marks``."""
    return [end - start for start, end in json.loads(marks.read_text(encoding="utf-8"))]


def steady(times: list[float]) -> list[float]:
    """The epochs of a run taking turns that ran alone: the first overlaps the other runs' start-up and the
    last their shutdown, as each hands the turn on at its last epoch's end and exits.
    """
    return times[1:-1]


def take_turns(project: Path, epochs: int, out: Path) -> dict[str, list[float]]:
    """Every run of RING started together, taking turns epoch by epoch in its order, stock first: the time
    of each of their epochs, ``{name: [seconds, ...]}``.
    """
    pipes = [os.pipe() for _ in RING]  # (read, write): run i reads pipes[i], writes pipes[i + 1]
    processes = {}
    for i, (name, (kind, environment)) in enumerate(RING.items()):
        read, write = pipes[i][0], pipes[(i + 1) % len(RING)][1]
        turn = f"--trainer.callbacks.init_args.turns={read},{write}"
        marks = out / f"{name}.json"
        processes[name] = subprocess.Popen(
            lightning_command(kind, project, epochs, out / name, marks, turn),
            cwd=project,
            env={**os.environ, **environment, "PYTHONPATH": str(HERE)},
            pass_fds=(read, write),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    os.write(pipes[0][1], b"x")  # stock's turn first
    for fd in (fd for pipe in pipes for fd in pipe):
        os.close(fd)
    for name, process in processes.items():
        _, stderr = process.communicate()
        if process.returncode != 0:
            sys.exit(f"benchmark: {name} run taking turns failed:\n{stderr[-3000:]}")
    return {name: epoch_times(out / f"{name}.json") for name in RING}


def median_epoch(turns: list[dict[str, list[float]]], name: str) -> float:
    """The median steady epoch of run ``name``, then the median over the repeats."""
    return statistics.median(statistics.median(steady(repeat[name])) for repeat in turns)


def per_round(
    turns: list[dict[str, list[float]]], name: str, other: str, compare: Callable[[float, float], float]
) -> float:
    """``compare(epoch of name, epoch of other)`` in each steady round, the median over the rounds, then
    over the repeats.
    """
    rounds = (zip(steady(repeat[name]), steady(repeat[other]), strict=False) for repeat in turns)
    return statistics.median(statistics.median(compare(a, b) for a, b in pairs) for pairs in rounds)


def costs_table(turns: list[dict[str, list[float]]], extras: dict[str, list[str]]) -> list[str]:
    """Markdown: what each group of extras costs an epoch, as the default's epoch less the epoch of the
    default without that group in the same round (steady rounds only; the median over the rounds, then over
    the repeats), and its share of all the extras (default less stock; n/a if the default was not slower,
    as may happen in quick mode); with torch's threads, then with one.
    """

    def saved(threads: str, name: str) -> float:
        """What an epoch of the default saves with ``name``'s extras off (all of them for stock)."""
        return per_round(turns, "default" + threads, name + threads, lambda a, b: a - b)

    totals = {threads: saved(threads, "stock") for threads in THREADS}

    def cells(name: str | None, off: tuple[str, ...]) -> list[str]:
        """The epoch of run ``name`` and what the runs ``off`` save, with each number of threads."""
        found = []
        for threads, total in totals.items():
            cost = sum(saved(threads, other) for other in off)
            found += [
                ms(median_epoch(turns, name + threads)) if name else "",
                ms(cost) if off else "",
                ("n/a" if total <= 0 else f"{cost / total:.0%}") if off else "",
            ]
        return found

    header = ["extras turned off", *(f"{measure}{threads}" for threads in THREADS for measure in MEASURES)]
    rows = [
        header,
        ["---"] * len(header),
        ["none: the default config", *cells("default", ())],
        *([f"{group} ({listed(extras[group])})", *cells(group, (group,))] for group in EXTRAS),
        ["the groups above, added up", *cells(None, tuple(EXTRAS))],
        ["all: stock Lightning", *cells("stock", ("stock",))],
    ]
    return ["| " + " | ".join(row) + " |" for row in rows]


def listed(names: list[str]) -> str:
    """``["A", "A", "B"]`` as ``"A x2, B"``; ``"none"`` if empty."""
    counts = Counter(names)
    return ", ".join(name + (f" x{count}" if count > 1 else "") for name, count in counts.items()) or "none"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
