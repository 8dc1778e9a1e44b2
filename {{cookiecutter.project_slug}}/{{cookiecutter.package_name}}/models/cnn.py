"""The network: a small convolutional network over images."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class CNN(nn.Module):
    """Maps images of ``input_shape`` to ``num_outputs`` numbers (one logit per class, say).

    Applies ``Conv3x3 -> BatchNorm -> ReLU -> MaxPool2`` once per entry of ``hidden_dims`` (the channel
    widths; each block halves the height and width), then dropout and a linear layer to ``num_outputs``. For
    1x28x28 images and ``hidden_dims=(32, 64)`` the features are 64x7x7.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        hidden_dims: Sequence[int] = (32, 64),
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        channels, height, width = input_shape
        layers: list[nn.Module] = []
        for out_channels in hidden_dims:
            layers += [
                # No bias: the BatchNorm that follows has its own.
                nn.Conv2d(channels, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels, height, width = out_channels, height // 2, width // 2
        layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * height * width, num_outputs)]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        """Return ``(batch, num_outputs)`` for images of shape ``(batch, *input_shape)``."""
        return self.layers(images)
