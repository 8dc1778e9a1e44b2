"""Shared infrastructure, the same in every project made from the template: you should not need to edit it.

- ``cli.py``: the command line; ``checks.py``: one-line errors and the stop on a diverging loss.
- ``checkpointing.py``: crash-safe checkpoints; ``signals.py``, ``preemption.py``: stopping on signals
  and SLURM requeues.
- ``runs.py``, ``resume.py``: finding runs and their checkpoints again; ``claims.py``: a folder and a
  lock for each run.
- ``predictions.py``: predictions to CSV; ``exporting.py``, ``staging.py``: export.
- ``output.py``: what a run prints; ``early_stopping.py``: early stopping that resumes; ``profiling.py``:
  the profiler that records nothing, cheaply.
- ``sweep.py``: the hyperparameter search (``python sweep.py``); ``search_space.py``: its config;
  ``study.py``: the study its workers share; ``pruning.py``: a trial's link to it; ``report.py``: output.

Your code lives in ``data/``, ``models/`` and ``lightning/module.py``.
"""
