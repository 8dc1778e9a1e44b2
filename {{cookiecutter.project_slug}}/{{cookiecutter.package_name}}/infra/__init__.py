"""Shared infrastructure, the same in every project made from the template: you should not need to edit it.

The command line (``cli.py``), crash-safe checkpoints (``checkpointing.py``), stopping on signals and SLURM
requeues (``signals.py``, ``preemption.py``), one-line errors (``checks.py``), finding runs again
(``runs.py``), a folder and a lock for each run (``claims.py``), predictions to CSV (``predictions.py``),
export (``exporting.py``, ``staging.py``), what a run prints (``output.py``) and early stopping that resumes
(``early_stopping.py``).
Your code lives in ``data/``, ``models/`` and ``lightning/module.py``.
"""
