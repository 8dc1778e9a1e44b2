"""Export a checkpoint for serving: ONNX and ``torch.export`` files, each checked against the PyTorch model.

``python export.py --ckpt_path best`` writes into ``<run>/export/<checkpoint name>/``:

- ``model.onnx`` (onnxruntime, or any ONNX runtime) and ``model.pt2`` (``torch.export.load``, or
  AOTInductor for C++), taking the arguments of the model's ``forward`` with any batch size;
- ``model.json``: what a consumer needs: each input and output (name, dtype, shape), what ``forward``
  returns (its docstring), the values the data gave the model (``model_args()``: class names, a
  normalisation...), the checkpoint and where it came from (the run, attempt and commit that trained it, as
  recorded in it), the code that exported it, and the measured difference from PyTorch.

The model is built as ``python train.py predict --ckpt_path ...`` builds it; the inputs of the export and
of its check are real samples of the configured data (``export_inputs.py``). Each exported file is loaded
back and run on batches of sizes other than the one exported with, and must agree with the PyTorch model to
``--atol`` plus ``--rtol`` times the largest output. The folder holds the files of one checkpoint only: an
export replaces it whole (keeping the other format's file when it was exported from the same checkpoint),
and a failed one leaves it as it was.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace
from torch import Tensor, nn

from ..command.checks import read_checkpoint, reported_as_one_line
from ..command.cli import build
from ..command.code_version import code_version
from ..command.defaults import default_config
from ..command.output import quiet_known_noise
from ..command.record import recorded_data_args
from ..command.resume import resolve_checkpoint
from ..faults.signals import StopRequested, stops_raise
from .export_inputs import example_inputs, flatten_outputs, input_names, output_names, signature
from .staging import staged_folder

FILES = {"onnx": "model.onnx", "pt2": "model.pt2"}
CONTRACT = "model.json"
INSTALL_HINT = 'pip install -e ".[export]"'


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Export's own options (``python export.py --help``), and the rest: train.py options."""
    parser = argparse.ArgumentParser(
        prog="export.py",
        allow_abbrev=False,
        description=__doc__.split("\n")[0],
        epilog="Any other option is a train.py option, e.g. --data.init_args.batch_size 8.",
    )
    parser.add_argument("--ckpt_path", required=True, help="best or last of the newest run, or a .ckpt file")
    parser.add_argument("--format", nargs="+", choices=sorted(FILES), default=sorted(FILES))
    parser.add_argument("--output_dir", type=Path, help="default: <run>/export/<checkpoint name>/")
    parser.add_argument("--atol", type=float, default=1e-6, help="allowed |exported - PyTorch|: this ...")
    parser.add_argument("--rtol", type=float, default=1e-5, help="... plus this times the largest output")
    parser.add_argument("--save_dir", help="where the runs are, for best/last (default: the logger's)")
    return parser.parse_known_args(sys.argv[1:] if argv is None else argv)


def checkpoint_file(ckpt_path: str, save_dir: str | None) -> Path:
    """``best``/``last`` resolved exactly as ``train.py`` does, against the logger of configs/config.yaml."""
    if ckpt_path not in ("best", "last"):
        path = Path(ckpt_path)
        if not path.is_file():
            sys.exit(f"error: --ckpt_path {ckpt_path}: no such file (give best, last or a .ckpt file)")
        return path
    config = yaml.safe_load(default_config().read_text(encoding="utf-8"))
    logger_config = config["trainer"]["logger"]
    logger = Namespace(
        class_path=logger_config["class_path"], init_args=Namespace(**logger_config["init_args"])
    )
    if save_dir is not None:
        logger.init_args.save_dir = save_dir
    return resolve_checkpoint(ckpt_path, logger)


def require_onnx() -> None:
    """Exit with the install command when the optional ONNX packages are missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        sys.exit(f"error: --format onnx needs {error.name}, an optional dependency: {INSTALL_HINT}")


def dynamic_batch(inputs: tuple[Tensor, ...]) -> tuple[dict[int, Any], ...]:
    """Every input's first dimension is the batch, of any size."""
    batch = torch.export.Dim("batch")
    return tuple({0: batch} for _ in inputs)


def export_onnx(module: nn.Module, inputs: tuple[Tensor, ...], path: Path) -> str:
    """Write ``module`` as ONNX with a dynamic batch dimension; return how it was exported."""
    # The dynamo exporter (torch.export), torch's maintained one. One self-contained file
    # (external_data=False) is simplest to ship and fine below ONNX's 2 GB protobuf limit.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notices
    torch.onnx.export(
        module,
        inputs,
        path,
        dynamo=True,
        external_data=False,
        input_names=input_names(module, inputs),
        output_names=output_names(module(*inputs)),
        dynamic_shapes=dynamic_batch(inputs),
        verbose=False,
    )
    return "torch.onnx.export(dynamo=True)"


def export_pt2(module: nn.Module, inputs: tuple[Tensor, ...], path: Path) -> str:
    """Write ``module`` as an ExportedProgram (any batch size); return how it was exported."""
    torch.export.save(torch.export.export(module, inputs, dynamic_shapes=dynamic_batch(inputs)), path)
    return "torch.export.export"


EXPORTERS = {"onnx": export_onnx, "pt2": export_pt2}


def run_exported(fmt: str, path: Path, inputs: tuple[Tensor, ...], names: list[str]) -> list[Tensor]:
    """The outputs of the exported file at ``path``, loaded back from disk, for ``inputs``."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {name: value.numpy() for name, value in zip(names, inputs, strict=True)}
        return [torch.from_numpy(output) for output in session.run(None, feed)]
    return flatten_outputs(torch.export.load(path).module()(*inputs))


@torch.no_grad()
def check(fmt: str, path: Path, module: nn.Module, samples: tuple[Tensor, ...], args) -> dict[str, Any]:
    """The worst difference from PyTorch, and its limit, running the file on one sample and on all."""
    names = input_names(module, samples)
    worst = {"max_abs_error": 0.0, "allowed": 0.0, "ratio": 0.0}
    for size in sorted({1, len(samples[0])}):
        inputs = tuple(value[:size] for value in samples)
        expected, exported = flatten_outputs(module(*inputs)), run_exported(fmt, path, inputs, names)
        for want, got in zip(expected, exported, strict=True):
            if got.shape != want.shape:
                shapes = f"{tuple(got.shape)}, PyTorch {tuple(want.shape)}"
                sys.exit(f"error: the {fmt} export returned shape {shapes}")
            error = (got.double() - want.double()).abs().max().item()
            allowed = args.atol + args.rtol * want.double().abs().max().item()
            ratio = error / allowed if error == error else float("inf")  # NaN fails
            if ratio >= worst["ratio"]:
                worst = {"max_abs_error": error, "allowed": allowed, "ratio": ratio}
    return worst


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex: what names a checkpoint wherever it is copied."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def keep_previous(output_dir: Path, staging: Path, digest: str, formats: list[str]) -> dict[str, Any]:
    """Keep the files of formats not exported now, if of the same checkpoint; return their results."""
    try:
        previous = json.loads((output_dir / CONTRACT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if previous.get("checkpoint_sha256") != digest:
        return {}  # another checkpoint's files: one folder never mixes two models
    kept = {fmt: result for fmt, result in previous.get("formats", {}).items() if fmt not in formats}
    for fmt in kept:
        try:
            os.link(output_dir / FILES[fmt], staging / FILES[fmt])
        except OSError:
            shutil.copy2(output_dir / FILES[fmt], staging / FILES[fmt])
    return kept


def describe(
    checkpoint: Path, digest: str, state: dict, module: nn.Module, samples: tuple, results: dict, args
) -> dict:
    """The consumer's contract, written as model.json next to the exported files."""
    with torch.no_grad():
        returned = module(*samples)
    outputs = flatten_outputs(returned)
    exported_with = code_version()  # the code of forward(), which may have changed since training
    return {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": digest,
        "epoch": state.get("epoch"),
        "global_step": state.get("global_step"),
        "provenance": (state.get("record") or {}).get("provenance"),  # the run, attempt and commit
        "exported_with": {key: getattr(exported_with, key) for key in ("commit", "branch", "dirty", "why")},
        "model": f"{type(module).__module__}.{type(module).__qualname__}",
        "inputs": [signature(*pair) for pair in zip(input_names(module, samples), samples, strict=True)],
        "outputs": [signature(*pair) for pair in zip(output_names(returned), outputs, strict=True)],
        "forward": inspect.getdoc(type(module).forward) or "",
        "data_args": recorded_data_args(state),
        "formats": results,
        "tolerance": {"atol": args.atol, "rtol": args.rtol, "batch_sizes": sorted({1, len(samples[0])})},
    }


def trained_model(checkpoint: Path, train_options: list[str]) -> tuple[nn.Module, dict, tuple[Tensor, ...]]:
    """The model, its checkpoint, and real samples to export with.

    The model is built as ``train.py predict --ckpt_path`` builds it, with its weights, in eval mode.
    """
    # export.py's own arguments are not train.py's: LightningCLI would warn that it sees both.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        with reported_as_one_line():
            options = [f"--ckpt_path={checkpoint}", "--trainer.logger=false", *train_options]
            cli = build(["predict", *options], run=False)
            state = read_checkpoint(checkpoint, weights_only=True)
            module = cli.model.eval()
            module.load_state_dict(state["state_dict"])
            return module, state, example_inputs(module, cli.datamodule)
    finally:
        sys.argv = argv


def main(argv: list[str] | None = None) -> None:
    """Export, check every exported file against PyTorch, and write model.json; stop cleanly on a signal."""
    args, train_options = parse_args(argv)
    try:
        with stops_raise():
            export(args, train_options)
    except StopRequested as stop:
        print(f"stopped by {stop}: nothing was written; run the same command again", file=sys.stderr)
        sys.exit(128 + stop.signum)


def export(args: argparse.Namespace, train_options: list[str]) -> None:
    """Export, check every exported file against PyTorch, and write model.json."""
    if "onnx" in args.format:
        require_onnx()
    quiet_known_noise()
    checkpoint = checkpoint_file(args.ckpt_path, args.save_dir)
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    output_dir = args.output_dir or run_dir / "export" / checkpoint.stem
    # The export replaces the folder whole: files that another export did not write would be lost.
    if output_dir.exists() and not (
        output_dir.is_dir() and {path.name for path in output_dir.iterdir()} <= {*FILES.values(), CONTRACT}
    ):
        sys.exit(f"error: --output_dir {output_dir}: holds more than an export; give a new or empty folder")
    module, state, samples = trained_model(checkpoint, train_options)
    digest = file_sha256(checkpoint)  # read once: a checkpoint may be gigabytes
    results, failures = {}, []
    with staged_folder(output_dir) as staging, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation notices are torch's, not this project's
        exported_with = tuple(value[: max(2, len(value) // 2)] for value in samples)
        results.update(keep_previous(output_dir, staging, digest, args.format))
        for fmt in args.format:
            exporter = EXPORTERS[fmt](module, exported_with, staging / FILES[fmt])
            worst = check(fmt, staging / FILES[fmt], module, samples, args)
            results[fmt] = {"file": FILES[fmt], "exporter": exporter, "max_abs_error": worst["max_abs_error"]}
            if not worst["ratio"] <= 1:
                failures.append(
                    f"{fmt} differs from PyTorch by up to {worst['max_abs_error']:.3g} >"
                    f" {worst['allowed']:.3g} (--atol {args.atol:g} + --rtol {args.rtol:g} x the largest)"
                )
        if failures:
            sys.exit(f"error: {'; '.join(failures)}; nothing was written to {output_dir}")
        contract = describe(checkpoint, digest, state, module, samples, results, args)
        (staging / CONTRACT).write_text(json.dumps(contract, indent=2) + "\n", encoding="utf-8")
    for fmt in args.format:
        error = results[fmt]["max_abs_error"]
        print(f"{fmt}: {output_dir / FILES[fmt]} (max |exported - PyTorch| = {error:.3g})")
    print(f"contract: {output_dir / CONTRACT}")
