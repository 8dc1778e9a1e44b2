"""Entry point: ``python export.py --ckpt_path best`` writes ONNX and torch.export files, parity-checked.

``python export.py --help`` lists the options; the ONNX format needs ``pip install -e ".[export]"``.
"""

from {{ cookiecutter.package_name }}.infra.outputs.exporting import main

if __name__ == "__main__":
    main()
