"""The network: a multilayer perceptron over flattened inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Module):
    """Maps inputs of ``input_shape`` to ``num_outputs`` numbers.

    Flattens each input, then applies ``Linear -> ReLU -> Dropout`` once per entry of ``hidden_dims``, then a
    linear layer to ``num_outputs``.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        hidden_dims: Sequence[int] = (128, 64),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        in_features = math.prod(input_shape)
        for width in hidden_dims:
            layers += [nn.Linear(in_features, width), nn.ReLU(), nn.Dropout(dropout)]
            in_features = width
        layers.append(nn.Linear(in_features, num_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, inputs: Tensor) -> Tensor:
        """Return ``(batch, num_outputs)`` for inputs of shape ``(batch, *input_shape)``."""
        return self.layers(inputs)
