"""Surviving faults: atomic checkpoints, stop signals, exact resumes, diverging losses."""
