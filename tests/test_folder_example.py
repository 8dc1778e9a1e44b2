"""The folder example's own README commands run, in order: sample images, training, and the LitData path."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import render, run
from test_install import make_venv

PACKAGE = "digits_classifier"


def folder_commands(readme: str) -> list[str]:
    """The lines of the README's bash blocks that only the folder example has: its sample images, the first
    training on them, the LitData shards. The default project's test runs the other commands.
    """
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    mine = [line for line in lines if f"{PACKAGE}.data." in line or "[streaming]" in line]
    return [*mine[:1], "python train.py", *mine[1:]]


@pytest.mark.slow
def test_the_folder_readme_commands_run(tmp_path_factory):
    project = render(tmp_path_factory.mktemp("folder"), example="folder", logger="csv")
    project = Path(shutil.copytree(project, tmp_path_factory.mktemp("copy") / "project"))
    commands = folder_commands((project / "README.md").read_text(encoding="utf-8"))
    assert commands == [
        f"python -m {PACKAGE}.data.folder data/images",
        "python train.py",
        'pip install -e ".[streaming]"',
        f"python -m {PACKAGE}.data.shards data/shards",
        f"python train.py fit --data {PACKAGE}.data.shards.ShardsDataModule --data.shards data/shards",
    ]
    # A virtual environment that sees this one's packages: the extra resolves with nothing downloaded.
    venv_python = make_venv(tmp_path_factory.mktemp("venv") / "venv")
    for command in commands:
        args = shlex.split(command)
        if args[0] == "pip":
            run([venv_python, "-m", "pip", "install", "--no-build-isolation", "-q", *args[2:]], cwd=project)
            continue
        if "train.py" in args:  # the sample images learn in a few epochs; the README's runs take more
            args += ["--trainer.max_epochs=3", "--trainer.enable_progress_bar=false"]
        result = run([venv_python, *args[1:]], cwd=project)
        if "train.py" in args:
            assert "Warning" not in result.stderr, result.stderr
    runs = sorted((project / "logs").glob("*/version_*"))
    assert len(runs) == 2 and all((run_dir / "checkpoints" / "last.ckpt").is_file() for run_dir in runs)
    assert (project / "data" / "images" / ".cache").is_dir()
    assert (project / "data" / "shards" / "train" / "index.json").is_file()
