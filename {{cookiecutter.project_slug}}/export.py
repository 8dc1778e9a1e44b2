"""Entry point: ``python export.py --ckpt_path best`` writes ONNX and torch.export files, parity-checked.

``python export.py --help`` lists the options; the ONNX format needs ``pip install -e ".[export]"``.
"""

from {{ cookiecutter.package_name }}.infra.faults.signals import catch_stop_signals, settle_for_exit

if __name__ == "__main__":
    # Before PyTorch loads (seconds), so that a stop signal arriving meanwhile is acted on, not fatal.
    catch_stop_signals()
    from {{ cookiecutter.package_name }}.infra.outputs.exporting import main

    try:
        main()
    finally:
        settle_for_exit()
