"""The configured LightningModule, built as the command line builds it, on the configured data."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import CONFIG, make_datamodule, make_model
from torch.utils.data import DataLoader

from {{ cookiecutter.package_name }}.infra.command.linking import constructor_parameters, data_args
from {{ cookiecutter.package_name }}.infra.outputs.batches import as_the_model_sees_it, split_batch


@pytest.fixture(scope="module")
def datamodule():
    return make_datamodule()


def test_the_model_computes_finite_outputs_for_a_batch(datamodule):
    model = make_model(datamodule).eval()
    batch = as_the_model_sees_it(next(iter(datamodule.val_dataloader())), model, datamodule)
    inputs, _ = split_batch(model, batch)
    with torch.no_grad():
        outputs = model(*inputs)
    for output in outputs.values() if isinstance(outputs, dict) else [outputs]:
        assert len(output) == len(inputs[0]) and torch.isfinite(output.float()).all()


def test_network_code_imports_no_lightning():
    import {{ cookiecutter.package_name }}.models as models

    for path in Path(models.__file__).parent.glob("*.py"):
        assert "lightning" not in path.read_text(encoding="utf-8"), path


def test_hyperparameters_hold_what_the_data_gave_and_load_safely(datamodule, tmp_path):
    model = make_model(datamodule)
    taken = constructor_parameters(CONFIG["model"]["class_path"])
    for name, value in data_args(datamodule).items():
        if name in taken:
            assert model.hparams[name] == value, name
    for name, value in (CONFIG["model"].get("init_args") or {}).items():
        assert model.hparams[name] == value, name
    # Plain values only: the checkpoint must load with weights_only=True and give them back unchanged.
    torch.save({"hyper_parameters": dict(model.hparams)}, tmp_path / "hparams.pt")
    loaded = torch.load(tmp_path / "hparams.pt", weights_only=True)["hyper_parameters"]
    assert loaded == dict(model.hparams)


class Losses(pl.Callback):
    def __init__(self) -> None:
        self.values = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.values.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))


def test_the_configured_model_can_fit_one_batch(datamodule):
    torch.manual_seed(0)
    model = make_model(datamodule)
    batch = as_the_model_sees_it(next(iter(datamodule.train_dataloader())), model, datamodule)
    losses = Losses()
    trainer = pl.Trainer(
        max_epochs=60,
        logger=False,
        callbacks=[losses],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        limit_val_batches=0,
        log_every_n_steps=1,
    )
    # The same batch, 60 times: its optimizer and schedule, as configured, must drive the loss down.
    one_batch = DataLoader([batch], batch_size=None)
    trainer.fit(model, train_dataloaders=one_batch, val_dataloaders=one_batch)
    assert losses.values[-1] < 0.9 * losses.values[0], losses.values
