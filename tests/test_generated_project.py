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
    """The ``python train.py ...`` lines of the generated README's bash blocks, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", (project / "README.md").read_text(encoding="utf-8"), re.S)
    return [
        line.strip() for block in blocks for line in block.splitlines() if line.startswith("python train.py")
    ]


@pytest.fixture(scope="module")
def fresh_default(rendered, tmp_path_factory) -> Path:
    """A private copy of the default project, so training output does not leak into other tests."""
    return Path(shutil.copytree(rendered("default"), tmp_path_factory.mktemp("trained") / "project"))


# The default project's whole suite runs in test_make_it_yours.py (after each change) and the other
# (logger, example) pairs' in test_options.py; other names skip the long multi-process runs, which do not
# depend on names, and still prove that every test file renders and runs.
@pytest.mark.parametrize("name", ["default", "apache"])
def test_generated_quick_tests_pass(rendered, tmp_path, name):
    project = Path(shutil.copytree(rendered(name), tmp_path / "project"))
    result = run(python("-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"), cwd=project)
    assert re.search(r"\d+ passed", result.stdout)
    assert "failed" not in result.stdout and "error" not in result.stdout.lower()


def test_default_training_reaches_95_percent(fresh_default):
    result = run(python("train.py", "--trainer.enable_progress_bar=false"), cwd=fresh_default)
    assert "Warning" not in result.stderr, result.stderr
    run_dir = fresh_default / "logs" / "digits-classifier" / "version_0"
    val_acc = scalars(run_dir, "val/acc")
    assert val_acc[-1][1] >= 0.95, val_acc
    checkpoints = run_dir / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file()
    assert len(list(checkpoints.glob("best-epoch=*.ckpt"))) == 1
    assert (run_dir / "config.yaml").is_file()

    # The README's resume command, after a run that early stopping (or max_epochs) ended: it trains on.
    last_epoch = torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"]
    command = next(c for c in readme_commands(fresh_default) if "--ckpt_path last" in c)
    max_epochs = int(re.search(r"--trainer.max_epochs (\d+)", command).group(1))
    assert max_epochs > last_epoch + 3, "the README's example must extend the default run"
    resumed_output = run(
        python(*shlex.split(command)[1:], "--trainer.enable_progress_bar=false"), cwd=fresh_default
    )
    assert sorted(p.name for p in (fresh_default / "logs" / "digits-classifier").iterdir()) == ["version_0"]
    resumed = torch.load(checkpoints / "last.ckpt", weights_only=True)
    # Patience counts again from the resumed epoch: at least that many more epochs, unless max_epochs ends it.
    patience = 5
    assert resumed["epoch"] - last_epoch >= min(patience, max_epochs - 1 - last_epoch), resumed_output.stderr
    steps = [step for step, _ in scalars(run_dir, "val/acc")]
    assert len(steps) == len(set(steps)) == len(val_acc) + (resumed["epoch"] - last_epoch)


def test_every_readme_command_runs(rendered, tmp_path):
    project = Path(shutil.copytree(rendered("default"), tmp_path / "project"))
    commands = readme_commands(project)
    assert any("--ckpt_path last" in command for command in commands)
    assert any(command.startswith("python train.py test") for command in commands)
    for command in commands:
        args = shlex.split(command)[1:] + ["--trainer.enable_progress_bar=false"]
        if "--print_config" in args:
            args.remove("--trainer.enable_progress_bar=false")
        run(python(*args), cwd=project)
