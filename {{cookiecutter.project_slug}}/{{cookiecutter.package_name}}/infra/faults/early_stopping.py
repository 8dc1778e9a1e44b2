"""Early stopping that a resumed run does not undo at once."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from ..command.profiling import FixedStateKey


class ResumableEarlyStopping(FixedStateKey, EarlyStopping):
    """Lightning's EarlyStopping, except that resuming a run it had stopped trains on.

    The stock callback restores its counter from the checkpoint: a run that early stopping ended, resumed
    with a larger ``max_epochs``, trains one more epoch and stops without a word. Here the patience counts
    again from the resumed epoch (and is the configured one, not the checkpoint's), the best score is kept,
    and one line says so. A run interrupted before it was stopped resumes its counter unchanged, so it
    ends exactly where an uninterrupted run would. Its state key is computed once (``FixedStateKey``).
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience
        if state_dict["wait_count"] >= state_dict["patience"]:
            stopped_after = state_dict["patience"]
            rank_zero_info(
                f"early stopping had ended this run ({self.monitor} did not improve for {stopped_after}"
                f" epochs): training on, stopping again after {patience} epochs without improvement"
            )
            self.wait_count = 0
            self.stopped_epoch = 0
            self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
            self.stopping_reason_message = None
