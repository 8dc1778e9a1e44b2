"""Turn the mistakes a user can make (a bad checkpoint, a diverging run, a mistyped option) into one line.

Each check exits with ``error: <what> <why>`` and a non-zero status before anything is written; errors
that are not the user's (bugs) keep their traceback.
"""

from __future__ import annotations

import re
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from pytorch_lightning.cli import LightningArgumentParser
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from ..faults.checkpointing import CheckpointWriteError


class ConciseParser(LightningArgumentParser):
    """One usage line with an error, not every option (``--help`` lists them); class arguments' in one line.

    An error about an argument of the model or the DataModule names it, instead of jsonargparse's
    paragraph about every type the value could have had.
    """

    def format_usage(self) -> str:
        return f"usage: {self.prog} [options]\n"

    def error(self, message: str, ex: Exception | None = None):
        return super().error(one_line_choice_error(one_line_class_error(message)), ex)


# jsonargparse's error for an argument of a class named by class_path: a paragraph about every type the
# value could have had, around the one problem that matters.
CLASS_ERROR = re.compile(
    r'Parser key "(?P<section>[\w.]+)":.*?Problem with given class_path \'(?P<path>[\w.]+)\':'
    r"\n(?P<problem>.*?)\n\s*- Expected a <class 'NoneType'>",
    re.DOTALL,
)


def one_line_class_error(message: str) -> str:
    """``message`` as one line if it is about an argument of a class named by ``class_path``."""
    found = CLASS_ERROR.search(message)
    if not found:
        return message
    section, name, problem = found["section"], found["path"].rpartition(".")[2], found["problem"]
    if unknown := re.search(r"Option '([\w.]+)' is not accepted", problem):
        return f"{section}.init_args.{unknown[1]}: {name} takes no such argument (see train.py fit --help)"
    if mistyped := re.search(r'Parser key "([\w.]+)":\s*(.*)', problem, re.DOTALL):
        return f"{section}.init_args.{mistyped[1]}: {' '.join(mistyped[2].split())}"
    return f"{section} ({name}): {' '.join(problem.split())}"


# jsonargparse's error for a value outside a fixed set of choices (a Literal), over two lines.
CHOICE_ERROR = re.compile(
    r'Parser key "(?P<key>[\w.]+)":\s*Expected a typing.Literal\[(?P<choices>.*)\]\. Got value: '
)


def one_line_choice_error(message: str) -> str:
    """``message`` as one line if it is about a value that is not one of the choices."""
    found = CHOICE_ERROR.search(message)
    if not found:
        return message
    value = message[found.end() :].strip()
    return f"{found['key']}: {value} is not one of {found['choices']}"


def read_checkpoint(path: Path, weights_only: bool | None) -> dict:
    """A Lightning checkpoint with its ``state_dict``, or exit with one line saying why ``path`` is not."""
    if not path.is_file():
        sys.exit(f"error: --ckpt_path {path}: no such file")
    # torch.save writes a zip archive; a truncated file has lost the archive's index at its end.
    if not zipfile.is_zipfile(path):
        sys.exit(f"error: --ckpt_path {path}: not a PyTorch checkpoint (truncated, or another kind of file)")
    try:
        # mmap: the tensors are read lazily, so checking a large checkpoint costs little memory.
        state = torch.load(path, map_location="cpu", weights_only=weights_only is not False, mmap=True)
    except Exception as error:  # whatever failed, the file is not a checkpoint this project can read
        reason = (str(error).strip() or type(error).__name__).splitlines()[0].split(". ")[0]
        sys.exit(f"error: --ckpt_path {path}: cannot be read as a checkpoint: {reason}")
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        sys.exit(f"error: --ckpt_path {path}: not a Lightning checkpoint (it has no 'state_dict')")
    return state


def check_weights_fit(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: str) -> None:
    """Exit with one line if ``weights`` do not fit ``model``: a checkpoint of another model or project."""
    expected = model.state_dict()
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    resized = sorted(
        key for key in expected.keys() & weights.keys() if expected[key].shape != weights[key].shape
    )
    problems = [
        f"{len(names)} {what} (e.g. {names[0]})"
        for names, what in ((missing, "missing"), (unexpected, "unexpected"), (resized, "of another shape"))
        if names
    ]
    if problems:
        sys.exit(
            f"error: --ckpt_path {path}: its weights do not fit {type(model).__name__}: "
            f"{', '.join(problems)}; was it saved by another model?"
        )


@contextmanager
def reported_as_one_line() -> Iterator[None]:
    """Turn the errors a user causes (a diverging run, a setting the hardware cannot honour) into one line.

    Anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except (FloatingPointError, MisconfigurationException, CheckpointWriteError) as error:
        sys.exit(f"error: {error}")
    except ValueError as error:
        # jsonargparse wraps what a class raises while it is instantiated from the config.
        if isinstance(error.__cause__, MisconfigurationException):
            sys.exit(f"error: {error.__cause__}")
        raise
