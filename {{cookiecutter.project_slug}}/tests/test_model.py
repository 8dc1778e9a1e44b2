from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package_name }}.lightning.module import ImageClassifier
from {{ cookiecutter.package_name }}.models.classifier import Classifier


@pytest.mark.parametrize("hidden_dims", [(), (32,), (128, 64)])
def test_classifier_maps_images_to_logits(hidden_dims):
    net = Classifier(input_shape=(1, 8, 8), num_classes=10, hidden_dims=hidden_dims)
    logits = net(torch.rand(5, 1, 8, 8))
    assert logits.shape == (5, 10)
    assert torch.isfinite(logits).all()


def test_classifier_imports_no_lightning():
    import {{ cookiecutter.package_name }}.models.classifier as module

    source = Path(module.__file__).read_text(encoding="utf-8")
    assert "lightning" not in source


def test_predict_step_returns_probabilities():
    model = ImageClassifier(input_shape=(1, 8, 8), num_classes=10).eval()
    probabilities = model.predict_step((torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)), 0)
    assert probabilities.shape == (4, 10)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(4))


def test_hyperparameters_are_plain_values():
    model = ImageClassifier(hidden_dims=[16], lr=0.01)
    assert dict(model.hparams) == {
        "input_shape": (1, 8, 8),
        "num_classes": 10,
        "hidden_dims": [16],
        "dropout": 0.1,
        "lr": 0.01,
        "weight_decay": 1e-4,
    }
