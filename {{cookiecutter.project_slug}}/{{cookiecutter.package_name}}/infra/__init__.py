"""Shared machinery, the same in every project made from the template: not yours to edit.

It works for any LightningModule and LightningDataModule, grouped by concern:

- ``command/``: the command line (``train.py``), the link from the data to the model, run folders, what a
  run prints, one-line errors;
- ``faults/``: crash-safe checkpoints, stop signals and SLURM requeues, exact resumes, a diverging loss;
- ``sweeps/``: the hyperparameter search (``sweep.py``);
- ``outputs/``: predictions to CSV and export (``export.py``).

Your code lives in ``data/``, ``models/`` and ``lightning/``.
"""
