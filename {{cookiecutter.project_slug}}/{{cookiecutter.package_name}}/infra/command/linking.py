"""The link from the data to the model: what the DataModule knows before training, handed to the model.

A DataModule may define ``model_args()``, returning plain values it knows before training: class names,
an input shape, a vocabulary size, feature names, target statistics... Each is passed to the model's
constructor argument of the same name, if it has one; a model that does not take a value is not an error.
Every checkpoint records them all (``record.py``), so that ``predict``, ``test`` and ``export.py`` read them
back without the data, and a checkpoint used with data that gives other values is refused in one line.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
from jsonargparse import ArgumentParser, Namespace

# jsonargparse's own switch for parsing a configuration whose values are not all known yet: the model's
# arguments that the data gives are filled in after the DataModule exists, and the whole configuration is
# validated then. A private name: tests/infra/test_linking.py fails at once if jsonargparse moves it.
from jsonargparse._common import parser_context


@contextmanager
def data_values_pending() -> Iterator[None]:
    """Around the parse: a model argument that only the data gives is not missing yet."""
    with parser_context(lenient_check=True):
        yield


def fail(message: str) -> None:
    """Exit with one line, as every mistake of the user does."""
    sys.exit(f"error: {message}")


def plain(value: Any) -> Any:
    """``value`` as YAML and checkpoints hold it (tuples become lists), or None if it is not plain data."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return None


def instantiate_data(spec: Namespace) -> pl.LightningDataModule:
    """The DataModule that ``data:`` of the configuration names, built as LightningCLI builds it."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(pl.LightningDataModule, "data", required=True)
    return parser.instantiate(Namespace(data=spec)).data


def data_args(datamodule: pl.LightningDataModule) -> dict[str, Any]:
    """What ``datamodule.model_args()`` gives (nothing if it has no such method), checked to be plain."""
    hook = getattr(datamodule, "model_args", None)
    if hook is None:
        return {}
    values = hook()
    name = type(datamodule).__name__
    if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
        fail(f"{name}.model_args() must return a dict of argument names to values, got {values!r:.80}")
    for key, value in values.items():
        if value is not None and plain(value) is None:
            fail(
                f"{name}.model_args() gives {key} = {value!r:.60}: give numbers, strings, lists or dicts, "
                "which checkpoints store safely"
            )
    return {key: plain(value) for key, value in values.items()}


def signature_of(class_path: str) -> list[inspect.Parameter]:
    """The parameters of the class's ``__init__``, ``self`` left out."""
    module, _, name = class_path.rpartition(".")
    return list(
        inspect.signature(getattr(importlib.import_module(module), name).__init__).parameters.values()
    )[1:]


def constructor_parameters(class_path: str) -> dict[str, inspect.Parameter]:
    """The named parameters of the model class's ``__init__`` (not ``self``, ``*args``, ``**kwargs``)."""
    skipped = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {p.name: p for p in signature_of(class_path) if p.kind not in skipped}


def takes_any_keyword(class_path: str) -> bool:
    """Whether the class's ``__init__`` takes ``**kwargs``."""
    return any(p.kind == inspect.Parameter.VAR_KEYWORD for p in signature_of(class_path))


def check_same_data(given: dict[str, Any], recorded: dict[str, Any], checkpoint: str) -> None:
    """Exit with one line if the data gives other values than those ``checkpoint`` was trained with."""
    for key in sorted(given.keys() & recorded.keys()):
        if plain(given[key]) != plain(recorded[key]):
            fail(
                f"--ckpt_path {checkpoint} was trained with {key} = {shown(recorded[key])}, but the data"
                f" gives {shown(given[key])}: use the data it was trained on, or train a new model on it"
            )


def link(model: Namespace, given: dict[str, Any], source: str) -> None:
    """Fill the model's arguments from ``given`` (said by ``source``), in place; one line on a conflict.

    A value the configuration sets to something else than the data gives is refused rather than
    silently replaced, and so is a required argument that neither gives.
    """
    parameters = constructor_parameters(model.class_path)
    model_name = model.class_path.rpartition(".")[2]
    init_args = model.get("init_args") or Namespace()
    for key, value in given.items():
        if key not in parameters:
            continue
        configured = init_args.get(key)
        default = parameters[key].default
        if configured is not None and configured != default and plain(configured) != value:
            fail(
                f"model.{key} is {shown(configured)} in the configuration, but {source} gives {shown(value)}:"
                f" remove it from the configuration, which {model_name} then takes from the data"
            )
        init_args[key] = value
    for key, parameter in parameters.items():
        if parameter.default is inspect.Parameter.empty and init_args.get(key) is None:
            offered = ", ".join(sorted(given)) or "nothing"
            fail(
                f"model.{key}: {model_name} needs it, and neither the configuration nor the data gives it"
                f" ({source} gives {offered}); set model.init_args.{key}, or return it from model_args()"
            )
    model.init_args = init_args


def shown(value: Any) -> str:
    """A value in an error line: whole if short, else its start."""
    text = json.dumps(plain(value)) if plain(value) is not None else repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
