"""Our network: token embeddings, max-pooled over the sequence."""

from torch import Tensor, nn


class MaxPoolClassifier(nn.Module):
    """Embeds each token, keeps each feature's largest value over the sequence, maps that to the classes."""

    def __init__(self, vocab_size: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits ``(batch, num_classes)`` for int64 tokens ``(batch, length)``."""
        return self.head(self.embedding(tokens).amax(dim=1))
