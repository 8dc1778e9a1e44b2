"""The example data: sequences of integer tokens, each holding one of four motifs, to classify.

A stand-in for tokenised text: each sequence is token ids drawn at random from a vocabulary, with one short
pattern (a motif of four tokens; each class has its own) written at a random place. The sequences are
generated from a seed, so nothing is downloaded; your own data would be a tokenizer's ids and their labels.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor

from .tensors import InMemoryDataModule, in_memory_splits, split_fractions, split_indices

CLASS_NAMES = ["motif A", "motif B", "motif C", "motif D"]
MOTIF_LENGTH = 4


def motif_sequences(num_sequences: int, length: int, vocab_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """``num_sequences`` int64 token sequences of ``length`` and their labels, the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    motifs = torch.randint(0, vocab_size, (len(CLASS_NAMES), MOTIF_LENGTH), generator=generator)
    labels = torch.arange(num_sequences) % len(CLASS_NAMES)
    tokens = torch.randint(0, vocab_size, (num_sequences, length), generator=generator)
    starts = torch.randint(0, length - MOTIF_LENGTH + 1, (num_sequences,), generator=generator)
    positions = starts[:, None] + torch.arange(MOTIF_LENGTH)
    tokens.scatter_(1, positions, motifs[labels])
    return tokens, labels


class TokensDataModule(InMemoryDataModule):
    """Generates the sequences, splits them into train/val/test reproducibly, and batches them.

    Batches are ``(tokens, labels)``: int64 ``(batch, length)`` and int64 ``(batch,)``. ``model_args()``
    tells the model what it is built for: the vocabulary size and the class names.

    Args:
        num_sequences: How many sequences to generate.
        length: Tokens in each sequence.
        vocab_size: Number of distinct tokens; tokens are integers from 0 to ``vocab_size - 1``.
        data_seed: Seed of the generated sequences.
        batch_size: Samples per batch (per device under DDP).
        val_fraction: Share of all samples held out for validation.
        test_fraction: Share of all samples held out for the final test.
        split_seed: Seed of the shuffle that assigns samples to splits; independent of the training seed
            so that changing one never changes the other.
        num_workers: DataLoader worker processes. The data lives in memory, so 0 is fastest.
    """

    def __init__(
        self,
        num_sequences: int = 4000,
        length: int = 48,
        vocab_size: int = 32,
        data_seed: int = 0,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if length < MOTIF_LENGTH or vocab_size < 2:
            raise MisconfigurationException(
                f"data.length {length}, data.vocab_size {vocab_size}: need length >= {MOTIF_LENGTH} and"
                " vocab_size >= 2"
            )
        self.num_sequences, self.length, self.vocab_size = num_sequences, length, vocab_size
        self.data_seed = data_seed
        self.fractions = split_fractions(val_fraction, test_fraction)
        self.split_seed = split_seed

    @classmethod
    def stand_in(cls, folder: Path) -> dict[str, object]:
        """Init arguments for stand-in data: fewer, shorter sequences (nothing is written to ``folder``)."""
        return {"num_sequences": 1200, "length": 16}

    def model_args(self) -> dict[str, object]:
        """What the model is built from: the vocabulary size and the class names."""
        return {"vocab_size": self.vocab_size, "class_names": CLASS_NAMES}

    def setup(self, stage: str | None = None) -> None:
        """Generate and split the sequences; every process computes the same ones from the two seeds."""
        if self.splits:
            return
        tokens, labels = motif_sequences(self.num_sequences, self.length, self.vocab_size, self.data_seed)
        indices = split_indices(len(labels), self.fractions, self.split_seed)
        self.splits = in_memory_splits(tokens, labels, indices)
