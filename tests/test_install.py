"""The generated project installs the way its README says, and its console script trains like train.py."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run

pytestmark = pytest.mark.slow


def make_venv(path: Path) -> str:
    """A virtual environment that sees this one's packages (torch, Lightning, pip, setuptools), so that
    installing the project resolves every declared dependency without downloading anything.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    venv_site = next((path / "lib").glob("python*/site-packages"))
    (venv_site / "test_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return str(path / "bin" / "python")


def test_pip_install_and_console_script(rendered, tmp_path):
    project = Path(shutil.copytree(rendered("default"), tmp_path / "project"))
    venv = tmp_path / "venv"
    venv_python = make_venv(venv)

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
    assert (logs / "digits-classifier" / "version_0" / "checkpoints" / "last.ckpt").is_file()


def test_a_regular_install_uses_the_project_config_or_says_where_it_is_missing(rendered, tmp_path):
    project = Path(shutil.copytree(rendered("default"), tmp_path / "project"))
    venv = tmp_path / "venv"
    venv_python = make_venv(venv)
    run([venv_python, "-m", "pip", "install", "--no-build-isolation", "-q", "."], cwd=project)
    script = str(venv / "bin" / "digits-classifier")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([script, "fit"], cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: configs/config.yaml not found beside the package ({venv_site_of(venv)}/configs) nor in the "
        "working directory: run from the project folder, or install it with `pip install -e .`"
    ]
    assert not any(elsewhere.iterdir()), "nothing may be written"

    # From the project folder, the installed package trains with the project's config, machinery included.
    run([script, "fit", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"], cwd=project)
    run_dir = project / "logs" / "digits-classifier" / "version_0"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert "AtomicCheckpointIO" in (run_dir / "config.yaml").read_text(encoding="utf-8")


def venv_site_of(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages")).resolve()
