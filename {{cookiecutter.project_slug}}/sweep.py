"""Hyperparameter search: ``python sweep.py`` runs the trials of configs/sweep.yaml; ``--help`` for more."""

from {{ cookiecutter.package_name }}.infra.faults.signals import catch_stop_signals, settle_for_exit

if __name__ == "__main__":
    # Before PyTorch loads (seconds), so that a stop signal arriving meanwhile is acted on, not fatal.
    catch_stop_signals()
    from {{ cookiecutter.package_name }}.infra.sweeps.sweep import main

    try:
        main()
    finally:
        settle_for_exit()  # the sweep is over: a signal now must neither fail it nor print a traceback
