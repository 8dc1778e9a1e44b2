"""Benchmark: the folder example's training data path against a hand-written Pillow loader.

Renders the folder example into a temporary folder, writes synthetic JPEGs (10 classes), and measures one
training epoch of each loader at two data-set sizes, each run in a process of its own, every loader with
the same number of DataLoader workers:

- hand-written: what a careful user writes: a Dataset that opens, converts and resizes each image with
  Pillow in ``__getitem__``, a shuffling DataLoader, uint8 batches;
- cold: the folder example with its cache off, as generated otherwise: each image decoded, randomly cropped
  and flipped in the workers, every epoch;
- first run: the folder example as generated: it writes its cache of resized images, then trains from it;
- cached: the run after, which finds the cache;
- cold / cached, no augmentation: the same two with ``crop_scale: null`` and ``flip: false``: the hand-written
  loader's work, like for like.

Images/s is the training split's images over the wall time from the DataModule's (or Dataset's) creation to
the end of the epoch: uint8 batches, as they are handed to the device (which normalises them; on the CPU that
costs any loader the same). Memory is the
peak, sampled every 20 ms, of the resident set (RSS) and the proportional set (PSS, shared pages counted
once) summed over the process and its workers. The JPEGs stay in the OS's page cache between runs: "cold"
means no cache of resized images, not a cold disk.

    python benchmarks/data_loading.py          # full: 5,000 and 20,000 JPEGs, 256 to 224, 3 repeats, medians
    python benchmarks/data_loading.py --side 96 --size 64 --out benchmarks/DATA_LOADING_SMALL.md
    python benchmarks/data_loading.py --quick  # smoke run for make check: 200 and 800 small images
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
PACKAGE = "digits_classifier"  # the rendered project's package, with the template's default answers
KINDS = ("hand-written", "cold", "first run", "cached", "cold, no augmentation", "cached, no augmentation")
LIKE_FOR_LIKE = ("cold, no augmentation", "cached, no augmentation")  # the hand-written loader's work
# Issue 29's targets, on 2 CPU cores.
MIN_COLD, MIN_CACHED, MAX_GROWTH = 1.0, 3.0, 1.15


def write_images(folder: Path, count: int, side: int) -> None:
    """``count`` JPEGs of ``side`` x ``side`` in 10 class folders: smooth noise, like a photo's texture."""
    import numpy as np
    from PIL import Image

    generator = np.random.default_rng(0)
    for index in range(count):
        path = folder / f"class{index % 10}" / f"{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        coarse = generator.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((side, side), Image.Resampling.BILINEAR).save(path, quality=90)


def hand_written_epoch(root: Path, size: int, batch_size: int, workers: int) -> int:
    """One epoch of the loader a careful user writes: Pillow in ``__getitem__``, the same training share."""
    import torch
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision.transforms.v2.functional import pil_to_tensor

    class PillowImages(Dataset):
        def __init__(self, files: list[Path], labels: list[int]) -> None:
            self.files, self.labels = files, labels

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, index: int):
            with Image.open(self.files[index]) as image:
                image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return pil_to_tensor(image), self.labels[index]

    classes = sorted(
        folder for folder in root.iterdir() if folder.is_dir() and not folder.name.startswith(".")
    )
    files = [(path, label) for label, folder in enumerate(classes) for path in sorted(folder.glob("*.jpg"))]
    keep = torch.randperm(len(files), generator=torch.Generator().manual_seed(42))[: round(0.7 * len(files))]
    train = [files[i] for i in keep.tolist()]
    dataset = PillowImages([path for path, _ in train], [label for _, label in train])
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)
    return sum(len(images) for images, _ in loader)


def folder_epoch(root: Path, size: int, batch_size: int, workers: int, kind: str) -> int:
    """One training epoch of the folder example's DataModule, the way Lightning drives it."""
    folder = sys.modules[f"{PACKAGE}.data.folder"]
    options = {"cache": None} if kind.startswith("cold") else {}
    if kind in LIKE_FOR_LIKE:
        options.update(crop_scale=None, flip=False)
    data = folder.FolderDataModule(
        root=str(root), image_size=(size, size), batch_size=batch_size, num_workers=workers, **options
    )
    data.setup("fit")
    loader = data.train_dataloader()
    loader.sampler.set_epoch(0)
    return sum(len(images) for images, _ in loader)


def measured(argv: list[str]) -> None:
    """The measured process: one epoch of one loader; prints the images and seconds as JSON."""
    kind, root, size, batch_size, workers = argv[0], Path(argv[1]), *map(int, argv[2:])
    # Imported before the clock starts, as by any training script: torch, torchvision, Lightning.
    importlib.import_module(f"{PACKAGE}.data.folder")

    started = time.perf_counter()
    if kind == "hand-written":
        seen = hand_written_epoch(root, size, batch_size, workers)
    else:
        seen = folder_epoch(root, size, batch_size, workers, kind)
    print(json.dumps({"images": seen, "seconds": time.perf_counter() - started}))


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (DataLoader workers), from /proc."""
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as file:
                for child in file.read().split():
                    found += tree(int(child))
    except OSError:  # it ended while being read
        pass
    return found


def memory(pids: list[int]) -> tuple[int, int]:
    """RSS and PSS in bytes, each summed over ``pids`` (Linux's smaps_rollup)."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as file:
                for line in file:
                    if line.startswith(("Rss:", "Pss:")):
                        kilobytes = int(line.split()[1]) * 1024
                        rss, pss = (
                            (rss + kilobytes, pss) if line.startswith("Rss:") else (rss, pss + kilobytes)
                        )
        except OSError:
            pass
    return rss, pss


def run_one(kind: str, root: Path, project: Path, size: int, batch_size: int, workers: int) -> dict:
    """Run one loader in a process of its own; its images/s and peak memory."""
    command = [
        sys.executable,
        __file__,
        "--measure",
        kind,
        str(root),
        str(size),
        str(batch_size),
        str(workers),
    ]
    env = {**os.environ, "PYTHONPATH": str(project)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0, 0]

    def sample() -> None:
        while process.poll() is None:
            rss, pss = memory(tree(process.pid))
            peak[:] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = process.communicate()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"benchmark: {kind} failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"rate": result["images"] / result["seconds"], "rss": peak[0], "pss": peak[1]}


def measure(args: argparse.Namespace, work: Path) -> dict:
    from cookiecutter.main import cookiecutter

    project = Path(
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(work), extra_context={"example": "folder"})
    )
    results: dict = {}
    for count in args.counts:
        root = work / f"images-{count}"
        write_images(root, count, args.side)
        for repeat in range(args.repeats):
            kinds = args.kinds
            order = kinds[repeat % len(kinds) :] + kinds[: repeat % len(kinds)]  # each kind leads in turn
            # The cache is written by the first run and read by the next two; the other kinds use none.
            readers = [kind for kind in order if kind.startswith("cached")]
            order = [kind for kind in order if not kind.startswith("cached")]
            order[order.index("first run") + 1 : order.index("first run") + 1] = readers
            for kind in order:
                if kind == "first run":
                    shutil.rmtree(root / ".cache", ignore_errors=True)
                result = run_one(kind, root, project, args.size, args.batch_size, args.workers)
                results.setdefault(count, {}).setdefault(kind, []).append(result)
                print(
                    f"{count:>6} images, repeat {repeat + 1}, {kind}: {result['rate']:,.0f} images/s",
                    flush=True,
                )
    return results


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def ratio(results: dict, count: int, kind: str) -> float:
    """The kind's images/s over the hand-written loader's, the median of each repeat's ratio."""
    pairs = zip(results[count][kind], results[count]["hand-written"], strict=True)
    return statistics.median(run["rate"] / hand["rate"] for run, hand in pairs)


def verdict(value: float, target: float, at_least: bool, judged: bool) -> str:
    if not judged:
        return "not judged in quick mode"
    met = value >= target if at_least else value <= target
    return f"{'meets' if met else 'misses'} target {'>=' if at_least else '<='} {target:.2f}x"


def table(results: dict, args: argparse.Namespace) -> str:
    small, large = args.counts
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} CPU cores (load "
        f"average {args.load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end), Python "
        f"{platform.python_version()}; {args.side}x{args.side} JPEGs resized to {args.size}x{args.size}, "
        f"{args.workers} DataLoader workers for every loader, batches of {args.batch_size}, 70% of the "
        f"images in the training epoch; {args.repeats} repeats, medians.",
        "",
        "| images | loader | images/s | vs hand-written | peak RSS, summed | peak PSS, summed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for count in args.counts:
        for kind in args.kinds:
            runs = results[count][kind]
            versus = "1.00x" if kind == "hand-written" else f"{ratio(results, count, kind):.2f}x"
            lines.append(
                f"| {count:,} | {kind} | {median(runs, 'rate'):,.0f} | {versus} | "
                f"{median(runs, 'rss') / 1e9:.2f} GB | {median(runs, 'pss') / 1e9:.2f} GB |"
            )
    judged = not args.quick
    lines += ["", "| target | measured | verdict |", "| --- | --- | --- |"]
    pairs = [("cold", MIN_COLD), ("cached", MIN_CACHED)]
    pairs += [
        (kind, target) for kind, (_, target) in zip(LIKE_FOR_LIKE, pairs, strict=True) if kind in args.kinds
    ]
    for count in args.counts:
        for kind, target in pairs:
            value = ratio(results, count, kind)
            lines.append(
                f"| {kind} vs hand-written, {count:,} images | {value:.2f}x | "
                f"{verdict(value, target, True, judged)} |"
            )
    for kind in ("cold", "first run", "cached"):
        growth = median(results[large][kind], "rss") / median(results[small][kind], "rss")
        lines.append(
            f"| peak RSS, {large:,} vs {small:,} images, {kind} | {growth:.2f}x | "
            f"{verdict(growth, MAX_GROWTH, False, judged)} |"
        )
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        measured(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs=2, default=[5000, 20000], help="the two data-set sizes")
    parser.add_argument("--side", type=int, default=256, help="the JPEGs' width and height")
    parser.add_argument("--size", type=int, default=224, help="the size they are resized to")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of every loader")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="300 and 1,200 images of 48x48, once; not judged"
    )
    parser.add_argument("--out", type=Path, default=HERE / "DATA_LOADING.md", help="where to write the table")
    args = parser.parse_args()
    args.kinds = KINDS
    if args.quick:  # each code path once, small: the like-for-like rows are left out
        args.counts, args.side, args.size, args.repeats = [200, 800], 48, 32, 1
        args.kinds = tuple(kind for kind in KINDS if kind not in LIKE_FOR_LIKE)
    args.load = os.getloadavg()  # other work on the machine slows every loader: said with the results
    with tempfile.TemporaryDirectory() as work:
        results = measure(args, Path(work))
    text = table(results, args)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
