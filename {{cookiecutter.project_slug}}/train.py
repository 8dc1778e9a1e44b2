"""Entry point: ``python train.py`` fits with configs/config.yaml; ``python train.py --help`` for the rest."""

from {{ cookiecutter.package_name }}.infra.faults.signals import catch_stop_signals, ignore_requeue_signal

if __name__ == "__main__":
    # Before PyTorch loads (seconds), so that a stop signal arriving meanwhile is acted on, not fatal.
    catch_stop_signals()
    from {{ cookiecutter.package_name }}.infra.command.cli import main

    try:
        main()
    finally:
        ignore_requeue_signal()  # the run is over: a time-limit signal must not fail it while it exits
