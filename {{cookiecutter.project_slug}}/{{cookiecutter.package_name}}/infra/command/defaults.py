"""The command line's defaults: where the config is, which subcommand, which precision on this hardware."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

SUBCOMMANDS = ("fit", "validate", "test", "predict")


def default_config() -> Path:
    """The project's ``configs/config.yaml``, or exit with one line saying where it was looked for.

    It is beside the package in a checkout or an editable install, and in the working directory when a
    ``pip install .`` is run from the project folder.
    """
    beside = Path(__file__).resolve().parents[3] / "configs" / "config.yaml"
    for candidate in (beside, Path("configs/config.yaml")):
        if candidate.is_file():
            return candidate.resolve()
    sys.exit(
        f"error: configs/config.yaml not found beside the package ({beside.parent}) nor in the working"
        " directory: run from the project folder, or install it with `pip install -e .`"
    )


def default_precision(accelerator: object) -> str:
    """Mixed precision on CUDA GPUs (bf16 where the GPU supports it), full precision everywhere else."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def use_tensor_cores(accelerator: object) -> None:
    """On CUDA GPUs, let float32 matmuls use TF32 tensor cores: a 10-bit mantissa, several times faster."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")


def with_default_subcommand(argv: list[str]) -> list[str]:
    """``train.py [--options]`` means ``train.py fit [--options]``; help and explicit subcommands pass."""
    if any(arg in (*SUBCOMMANDS, "-h", "--help") for arg in argv):
        return argv
    return ["fit", *argv]
