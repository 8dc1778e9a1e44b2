"""The generated project installs the way its README says, and its console script trains like train.py."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

from conftest import run


def test_pip_install_and_console_script(rendered, tmp_path):
    project = Path(shutil.copytree(rendered("default"), tmp_path / "project"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The new environment sees this one's packages (torch, Lightning, pip, setuptools), so installing
    # the project resolves every declared dependency without downloading anything.
    venv_site = next((venv / "lib").glob("python*/site-packages"))
    (venv_site / "test_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    venv_python = str(venv / "bin" / "python")

    run([venv_python, "-m", "pip", "install", "--no-build-isolation", "-q", "-e", ".[dev]"], cwd=project)

    script = venv / "bin" / "digits-classifier"
    assert script.is_file()
    help_text = run([str(script), "--help"], cwd=tmp_path).stdout
    assert "fit" in help_text and "predict" in help_text
    config = run([str(script), "fit", "--print_config"], cwd=tmp_path).stdout
    assert "monitor: val/loss" in config
    logs = tmp_path / "logs"
    run(
        [str(script), "fit", "--trainer.max_epochs=1", f"--trainer.logger.init_args.save_dir={logs}"],
        cwd=tmp_path,
    )
    assert (logs / "digits" / "version_0" / "checkpoints" / "last.ckpt").is_file()
