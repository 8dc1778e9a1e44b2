"""Shared infrastructure, the same in every project made from the template: you should not need to edit it.

The command line (``cli.py``), crash-safe checkpoints and preemption (``checkpointing.py``), one-line errors
(``checks.py``), finding runs again (``runs.py``), predictions to CSV (``predictions.py``), export
(``exporting.py``), what a run prints (``output.py``) and early stopping that resumes (``early_stopping.py``).
Your code lives in ``data/``, ``models/`` and ``lightning/module.py``.
"""
