"""The network and the LightningModule, built as the config builds them, on the configured data's shapes."""

from pathlib import Path

import pytest
import torch
from conftest import CONFIG, make_datamodule, make_model

from {{ cookiecutter.package_name }}.models import Classifier


@pytest.fixture(scope="module")
def datamodule():
    return make_datamodule()


def widths(datamodule) -> list[list[int]]:
    """Hidden widths to try: none, one, the configured ones, and a wider and deeper stack."""
    configured = list(CONFIG["model"]["hidden_dims"])
    return [[], configured[:1], configured, [2 * width for width in configured] + configured[-1:]]


def test_classifier_maps_images_to_logits_for_any_widths(datamodule):
    images, _ = next(iter(datamodule.val_dataloader()))
    for hidden_dims in widths(datamodule):
        net = Classifier(datamodule.input_shape, len(datamodule.class_names), hidden_dims)
        logits = net(images)
        assert logits.shape == (len(images), len(datamodule.class_names)), hidden_dims
        assert torch.isfinite(logits).all()


def test_network_code_imports_no_lightning():
    import {{ cookiecutter.package_name }}.models as models

    for path in Path(models.__file__).parent.glob("*.py"):
        assert "lightning" not in path.read_text(encoding="utf-8"), path


def test_predict_step_returns_probabilities(datamodule):
    model = make_model(datamodule).eval()
    images, labels = next(iter(datamodule.val_dataloader()))
    probabilities = model.predict_step((images, labels), 0)
    assert probabilities.shape == (len(images), len(datamodule.class_names))
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(len(images)))


def test_hyperparameters_hold_the_data_contract_and_load_safely(datamodule, tmp_path):
    model = make_model(datamodule)
    assert tuple(model.hparams.input_shape) == tuple(datamodule.input_shape)
    assert list(model.hparams.class_names) == list(datamodule.class_names)
    for name, value in CONFIG["model"].items():
        assert model.hparams[name] == value, name
    # Plain values only: the checkpoint must load with weights_only=True and give them back unchanged.
    torch.save({"hyper_parameters": dict(model.hparams)}, tmp_path / "hparams.pt")
    loaded = torch.load(tmp_path / "hparams.pt", weights_only=True)["hyper_parameters"]
    assert loaded == dict(model.hparams)


def test_the_configured_model_can_fit_one_batch(datamodule):
    torch.manual_seed(0)
    model = make_model(datamodule)
    images, labels = next(iter(datamodule.train_dataloader()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=model.hparams.lr)
    losses = []
    for _ in range(40):
        loss = model.loss(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2, losses
