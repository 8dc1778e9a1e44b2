"""Export a checkpoint for serving: ONNX and TorchScript files, each checked against the PyTorch model.

``python export.py --ckpt_path best`` writes into ``<run>/export/<checkpoint name>/``:

- ``model.onnx`` (run it with onnxruntime) and ``model.pt`` (TorchScript, ``torch.jit.load``), both taking
  ``images`` of shape ``(batch, *input_shape)`` with any batch size and returning ``logits``;
- ``model.json``: what a consumer needs: input shape and dtype, how raw pixels are normalised, the class
  names, what the output means, and the measured difference from PyTorch.

Each exported file is loaded back and run on batches of sizes other than the one used while exporting
(proving the batch dimension is dynamic); the export fails, exit status 1, if any output differs from the
PyTorch model's by more than ``--atol``. The folder is replaced whole, and only by an export that passed:
it always holds one complete export, never files of two, and a failed export leaves it as it was.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

import torch
import yaml
from jsonargparse import Namespace
from torch import Tensor, nn

from ...lightning.module import ImageClassifier
from ..command.checks import check_weights_fit, read_checkpoint
from ..command.cli import default_config
from ..command.output import quiet_known_noise
from ..command.resume import resolve_checkpoint
from .staging import staged_folder

FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}
CONTRACT = "model.json"
EXPORT_BATCH = 4  # example batch traced while exporting (not 1, which torch.export would specialise on)
CHECK_BATCHES = (1, 7)  # batch sizes the exported files are checked on: neither is EXPORT_BATCH
INSTALL_HINT = 'pip install -e ".[export]"'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; ``python export.py --help`` shows it."""
    parser = argparse.ArgumentParser(prog="export.py", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="best or last of the newest run, or a .ckpt file")
    parser.add_argument("--format", nargs="+", choices=sorted(FILES), default=sorted(FILES))
    parser.add_argument("--output_dir", type=Path, help="default: <run>/export/<checkpoint name>/")
    parser.add_argument("--atol", type=float, default=1e-5, help="largest allowed |exported - PyTorch| logit")
    parser.add_argument("--save_dir", help="where the runs are, for best/last (default: the logger's)")
    return parser.parse_args(argv)


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


def load_network(path: Path) -> tuple[nn.Module, dict]:
    """The plain network stored in a checkpoint, in eval mode, and the hyperparameters it was built with."""
    checkpoint = read_checkpoint(path, weights_only=True)  # one line and exit for a file that is not one
    weights = checkpoint["state_dict"]
    # LightningCLI adds private entries (e.g. "_instantiator"); the constructor takes the others.
    hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if not k.startswith("_")}
    module = ImageClassifier(**hparams)
    check_weights_fit(module, weights, str(path))
    module.load_state_dict(weights)
    return module.net.eval(), hparams


def require_onnx() -> None:
    """Exit with the install command when the optional ONNX packages are missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        sys.exit(f"error: --format onnx needs {error.name}, an optional dependency: {INSTALL_HINT}")


def export_onnx(net: nn.Module, example: Tensor, path: Path) -> str:
    """Write ``net`` as ONNX with a dynamic batch dimension; return how it was exported."""
    # The dynamo exporter (torch.export), torch's default and maintained one, rather than the deprecated
    # TorchScript-based dynamo=False. The batch dimension is declared dynamic; one self-contained file
    # (external_data=False) is simplest to ship and fine below ONNX's 2 GB protobuf limit.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notices
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        net,
        (example,),
        path,
        dynamo=True,
        external_data=False,
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        verbose=False,
    )
    return "torch.onnx.export(dynamo=True)"


def export_torchscript(net: nn.Module, example: Tensor, path: Path) -> str:
    """Write ``net`` as TorchScript (any batch size); return how it was exported."""
    # Scripting compiles the code, so nothing depends on the example's shape (tracing would record it).
    # torch.jit is deprecated in favour of torch.export, but TorchScript is still what libtorch loads.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(net).save(str(path))
    return "torch.jit.script"


def run_exported(fmt: str, path: Path, images: Tensor) -> Tensor:
    """Logits of the exported file at ``path``, loaded back from disk, for ``images``."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(["logits"], {"images": images.numpy()})[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")(images)


@torch.no_grad()
def max_abs_error(fmt: str, path: Path, net: nn.Module, hparams: dict) -> float:
    """The largest |exported - PyTorch| logit over inputs of every batch size in ``CHECK_BATCHES``."""
    generator = torch.Generator().manual_seed(0)
    channels = hparams["input_shape"][0]
    norm = hparams.get("normalization") or {}
    mean = torch.tensor(norm.get("mean", [0.0])).reshape(-1, 1, 1).expand(channels, 1, 1)
    std = torch.tensor(norm.get("std", [1.0])).reshape(-1, 1, 1).expand(channels, 1, 1)
    errors = []
    for size in CHECK_BATCHES:
        # Random raw pixels over their whole range (0 to scale), normalised as the data module does.
        images = (torch.rand(size, *hparams["input_shape"], generator=generator) - mean) / std
        exported, expected = run_exported(fmt, path, images), net(images)
        if exported.shape != expected.shape:
            sys.exit(f"error: the {fmt} export returned shape {tuple(exported.shape)} for a batch of {size}")
        errors.append((exported - expected).abs().max().item())
    return max(errors)


def describe(checkpoint: Path, hparams: dict, results: dict, atol: float) -> dict:
    """The consumer's contract, written as model.json next to the exported files."""
    class_names = list(hparams["class_names"])
    return {
        "checkpoint": str(checkpoint),
        "input": {
            "name": "images",
            "shape": ["batch", *hparams["input_shape"]],
            "dtype": "float32",
            "normalization": {
                **(hparams.get("normalization") or {"scale": 1.0, "mean": [0.0], "std": [1.0]}),
                "formula": "(pixels / scale - mean[channel]) / std[channel]",
            },
        },
        "output": {
            "name": "logits",
            "shape": ["batch", len(class_names)],
            "meaning": "logits (unnormalised scores): softmax over the last axis gives class probabilities,"
            " argmax the index of the class in class_names",
        },
        "class_names": class_names,
        "formats": results,
        "tolerance": {"atol": atol, "checked_batch_sizes": list(CHECK_BATCHES)},
    }


def main(argv: list[str] | None = None) -> None:
    """Export, check every exported file against PyTorch, and write model.json."""
    args = parse_args(argv)
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
    net, hparams = load_network(checkpoint)
    example = torch.zeros(EXPORT_BATCH, *hparams["input_shape"])
    exporters = {"onnx": export_onnx, "torchscript": export_torchscript}
    results, failures = {}, []
    with staged_folder(output_dir) as staging:
        for fmt in args.format:
            exporter = exporters[fmt](net, example, staging / FILES[fmt])
            error = max_abs_error(fmt, staging / FILES[fmt], net, hparams)
            results[fmt] = {"file": FILES[fmt], "exporter": exporter, "max_abs_error": error}
            if not error <= args.atol:  # also catches NaN
                failures.append(f"{fmt} differs from PyTorch by up to {error:.3g} > atol {args.atol:g}")
        if failures:
            sys.exit(f"error: {'; '.join(failures)}; nothing was written to {output_dir}")
        contract = describe(checkpoint, hparams, results, args.atol)
        (staging / CONTRACT).write_text(json.dumps(contract, indent=2) + "\n", encoding="utf-8")
    for fmt, result in results.items():
        error = result["max_abs_error"]
        print(
            f"{fmt}: {output_dir / FILES[fmt]} (max |exported - PyTorch| = {error:.3g}, atol {args.atol:g})"
        )
    print(f"contract: {output_dir / CONTRACT}")
