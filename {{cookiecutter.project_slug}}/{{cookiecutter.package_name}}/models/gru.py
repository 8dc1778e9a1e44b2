"""The network: a recurrent network (GRU) over sequences of integer tokens."""

from __future__ import annotations

from torch import Tensor, nn


class GRUEncoder(nn.Module):
    """Maps token sequences to ``num_outputs`` numbers (one logit per class, say).

    Embeds each token, runs a GRU over the sequence and maps its last hidden state, after dropout, to
    ``num_outputs`` with a linear layer. Sequences of any length; tokens are integers in
    ``[0, vocab_size)``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_outputs: int,
        embedding_dim: int = 32,
        hidden_size: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.gru = nn.GRU(embedding_dim, hidden_size, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, num_outputs))

    def forward(self, tokens: Tensor) -> Tensor:
        """Return ``(batch, num_outputs)`` for int64 tokens of shape ``(batch, length)``."""
        _, hidden = self.gru(self.embedding(tokens))
        return self.head(hidden[-1])
