"""Entry point: ``python train.py`` fits with configs/config.yaml; ``python train.py --help`` for the rest."""

from {{ cookiecutter.package_name }}.infra.faults.signals import catch_stop_signals, settle_for_exit

if __name__ == "__main__":
    # Before PyTorch loads (seconds), so that a stop signal arriving meanwhile is acted on, not fatal.
    catch_stop_signals()
    from {{ cookiecutter.package_name }}.infra.command.cli import main

    try:
        main()
    finally:
        settle_for_exit()  # the run is over: a signal now must neither fail it nor print a traceback
