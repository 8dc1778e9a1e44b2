"""The link from the data to the model: what a DataModule gives reaches the model's arguments by name."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from jsonargparse import ArgumentParser, Namespace

from {{ cookiecutter.package_name }}.infra.command.linking import data_args, data_values_pending, link


class NeedsSpan(pl.LightningModule):
    """A model with an argument that no data gives, and one that has a default."""

    def __init__(self, span: int, depth: int = 2) -> None:
        super().__init__()


def model(class_path: str = f"{__name__}.NeedsSpan", **init_args: object) -> Namespace:
    return Namespace(class_path=class_path, init_args=Namespace(**init_args))


def test_given_values_fill_the_arguments_the_model_takes_and_the_others_are_ignored():
    spec = model(depth=2)
    link(spec, {"span": 8, "depth": 3, "class_names": ["a", "b"]}, "Data.model_args()")
    assert spec.init_args == Namespace(span=8, depth=3)


def test_a_configured_value_that_the_data_contradicts_is_refused():
    said = r"model.span is 4 in the configuration, but Data.model_args\(\) gives 8"
    with pytest.raises(SystemExit, match=said):
        link(model(span=4), {"span": 8}, "Data.model_args()")
    link(spec := model(span=8), {"span": 8}, "Data.model_args()")  # the same value: no conflict
    assert spec.init_args.span == 8


def test_a_required_argument_that_nobody_gives_is_named():
    with pytest.raises(SystemExit) as failure:
        link(model(), {"class_names": ["a"]}, "Data.model_args()")
    assert str(failure.value) == (
        "error: model.span: NeedsSpan needs it, and neither the configuration nor the data gives it"
        " (Data.model_args() gives class_names); set model.init_args.span, or return it from model_args()"
    )


def test_the_data_must_give_plain_values():
    class Data(pl.LightningDataModule):
        def model_args(self) -> dict:
            return {"mean": torch.zeros(3)}

    with pytest.raises(SystemExit, match="Data.model_args\\(\\) gives mean = tensor"):
        data_args(Data())


def test_a_configuration_parses_before_the_values_the_data_gives_are_known():
    """jsonargparse parses a model whose required argument the data gives later (linking.py's switch)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(pl.LightningModule, "model", required=True)
    with pytest.raises(Exception, match="span"):
        parser.parse_args([f"--model={__name__}.NeedsSpan"])
    with data_values_pending():
        parsed = parser.parse_args([f"--model={__name__}.NeedsSpan"])
    assert parsed.model.init_args.get("span") is None


def test_through_train_py_a_missing_argument_is_one_line_and_nothing_is_written(cli, tmp_path):
    result = cli("fit", f"--model={__name__}.NeedsSpan", log_dir=tmp_path, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: model.span: NeedsSpan needs it")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
