"""Entry point: ``python train.py`` fits with configs/config.yaml; ``python train.py --help`` for the rest."""

from {{ cookiecutter.package_name }}.infra.cli import main

if __name__ == "__main__":
    main()
