"""Entry point: ``python train.py`` fits with configs/config.yaml; ``python train.py --help`` for the rest."""

from {{ cookiecutter.package_name }}.infra.signals import catch_stop_signals

if __name__ == "__main__":
    # Before PyTorch loads (seconds), so that a stop signal arriving meanwhile is acted on, not fatal.
    catch_stop_signals()
    from {{ cookiecutter.package_name }}.infra.cli import main

    main()
