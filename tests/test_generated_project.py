"""Generated projects work: their own tests pass, and training through train.py really learns."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from conftest import python, run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """One TensorBoard scalar of a run folder, over all its event files, ordered by step."""
    points = []
    for events in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            points += [(event.step, event.value) for event in accumulator.Scalars(tag)]
    return sorted(points)


def readme_commands(project: Path) -> list[str]:
    """The ``python train.py ...`` lines of the generated README's bash blocks, in order.

    Those of "Search hyperparameters" follow a sweep: the generated tests/test_sweep.py runs that section.
    """
    readme = (project / "README.md").read_text(encoding="utf-8")
    readme = re.sub(r"\n## Search hyperparameters\n.*?(?=\n## )", "", readme, flags=re.S)
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    return [
        line.strip() for block in blocks for line in block.splitlines() if line.startswith("python train.py")
    ]


# The default project's whole suite runs in test_make_it_yours.py (after a team's first changes) and the other
# (logger, example) pairs' in test_options.py; other names skip the long multi-process runs, which do not
# depend on names, and still prove that every test file renders and runs.
@pytest.mark.parametrize("name", ["default", "apache"])
def test_generated_quick_tests_pass(rendered, tmp_path, name):
    project = Path(shutil.copytree(rendered(name), tmp_path / "project"))
    result = run(python("-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"), cwd=project)
    assert re.search(r"\d+ passed", result.stdout)
    assert "failed" not in result.stdout and "error" not in result.stdout.lower()


def check_the_default_run_learned(project: Path) -> Path:
    """The run of a plain ``python train.py``: >= 95% validation accuracy, its checkpoints and config."""
    run_dir = project / "logs" / "digits-classifier" / "version_0"
    val_acc = scalars(run_dir, "val/acc")
    assert val_acc[-1][1] >= 0.95, val_acc
    checkpoints = run_dir / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file()
    assert len(list(checkpoints.glob("best-epoch=*.ckpt"))) == 1
    assert (run_dir / "config.yaml").is_file()
    return run_dir


def check_resume_trains_on(project: Path, run_dir: Path, command: str) -> None:
    """The README's resume command, right after the default run that early stopping (or max_epochs) ended."""
    last = run_dir / "checkpoints" / "last.ckpt"
    last_epoch = torch.load(last, weights_only=True)["epoch"]
    val_steps = len(scalars(run_dir, "val/acc"))
    max_epochs = int(re.search(r"--trainer.max_epochs (\d+)", command).group(1))
    assert max_epochs > last_epoch + 3, "the README's example must extend the default run"
    result = run(python(*shlex.split(command)[1:], "--trainer.enable_progress_bar=false"), cwd=project)
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["version_0"]
    resumed = torch.load(last, weights_only=True)["epoch"]
    # Patience counts again from the resumed epoch: at least that many more epochs, unless max_epochs ends it.
    patience = 5
    assert resumed - last_epoch >= min(patience, max_epochs - 1 - last_epoch), result.stderr
    steps = [step for step, _ in scalars(run_dir, "val/acc")]
    assert len(steps) == len(set(steps)) == val_steps + (resumed - last_epoch)


@pytest.mark.slow
def test_every_readme_command_runs_and_the_default_run_learns(rendered, tmp_path):
    project = Path(shutil.copytree(rendered("default"), tmp_path / "project"))
    commands = readme_commands(project)
    resume = next(command for command in commands if "--ckpt_path last" in command)
    assert commands[0] == "python train.py"
    assert any(command.startswith("python train.py test") for command in commands)
    for command in commands:
        if command == resume:
            continue  # run right after the default run, below
        args = shlex.split(command)[1:]
        if "--print_config" not in args:
            args.append("--trainer.enable_progress_bar=false")
        result = run(python(*args), cwd=project)
        if command == commands[0]:
            assert "Warning" not in result.stderr, result.stderr
            check_resume_trains_on(project, check_the_default_run_learned(project), resume)
