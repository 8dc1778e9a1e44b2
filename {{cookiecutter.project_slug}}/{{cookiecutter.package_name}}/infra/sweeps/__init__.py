"""The hyperparameter search of ``sweep.py``: search space, shared study, pruning and report."""
