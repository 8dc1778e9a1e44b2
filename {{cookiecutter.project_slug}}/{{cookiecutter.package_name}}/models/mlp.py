"""The network: a small multilayer perceptron over flattened images."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn


class Classifier(nn.Module):
    """Maps images of ``input_shape`` to one logit per class.

    Flattens the image, then applies ``Linear -> ReLU -> Dropout`` once per entry of ``hidden_dims``,
    then a linear layer to ``num_classes`` logits.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_dims: Sequence[int] = (128, 64),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        in_features = math.prod(input_shape)
        for width in hidden_dims:
            layers += [nn.Linear(in_features, width), nn.ReLU(), nn.Dropout(dropout)]
            in_features = width
        layers.append(nn.Linear(in_features, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        """Return logits of shape ``(batch, num_classes)`` for images of shape ``(batch, *input_shape)``."""
        return self.layers(images)
