"""A team's own work in a generated project: its tests stay green with no test of the machinery edited.

The first week, one change after another: (a) a narrower network and a metric of its own (macro F1) as the
one that picks the best checkpoint and stops early, in the module and the config; (b) its own data: a
DataModule for a folder of PNG images of another shape, with other class names, touching only ``data/``,
the config and one dependency line; (c) a new hyperparameter, label smoothing, in ``lightning/module.py``.
Then other tasks, each from the default project: a regression written from Lightning's documentation
alone (none of the template's optional hooks), and a token-sequence classifier (``tests/teams/``). After
each change the project's lint and quick tests pass, and after the last of each, its whole suite; git
shows that nothing outside the team's own folders, config and example test changed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from conftest import COMMAND_TIMEOUT, WHOLE_SUITE_TIMEOUT, python, run
from PIL import Image

pytestmark = pytest.mark.slow

PACKAGE = "digits_classifier"
TEAMS = Path(__file__).parent / "teams"
CLASSES = ("cat", "dog", "fox", "owl")
HEIGHT, WIDTH = 10, 12
# What an optional hook of the template would unlock: the skips a project without it may show.
HOOK_SKIPS = (
    "cannot resume mid-epoch",
    "takes no seed argument",
    "gives the model nothing",
    "needs a CUDA GPU",
)

# Written by the test as a team would write it: nothing in it comes from the template's examples.
PNG_DATAMODULE = '''\
"""Our images: small RGB PNGs in one folder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from ..infra.faults.resumable_loader import ResumableDataLoader


class PngDataModule(pl.LightningDataModule):
    """Every PNG under ``root/<class>/``, as float RGB in [0, 1], split 70/15/15 by ``seed``."""

    def __init__(self, root: str, batch_size: int = 16, seed: int = 0) -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_size = batch_size
        self.seed = seed
        self.class_names = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.splits: dict[str, TensorDataset] = {}

    def model_args(self) -> dict:
        """The model is built for the images' shape and the class names."""
        width, height = Image.open(next(self.root.glob("*/*.png"))).size
        return {"input_shape": [3, height, width], "class_names": self.class_names}

    def setup(self, stage: str | None = None) -> None:
        """Read every image once and split them."""
        if self.splits:
            return
        files = sorted(self.root.glob("*/*.png"))
        pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
        labels = torch.tensor([self.class_names.index(f.parent.name) for f in files])
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(self.seed))
        cut = [round(len(files) * 0.15), round(len(files) * 0.3)]
        parts = {"test": order[: cut[0]], "val": order[cut[0] : cut[1]], "train": order[cut[1] :]}
        self.splits = {name: TensorDataset(images[i], labels[i]) for name, i in parts.items()}

    def train_dataloader(self) -> DataLoader:
        # A drop-in DataLoader that a run stopped mid-epoch resumes at the batch where it stopped.
        return ResumableDataLoader(self.splits["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["val"], batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["test"], batch_size=self.batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
'''


def write_pngs(root: Path, per_class: int = 40) -> None:
    """Noisy images whose dominant colour and bright corner depend on the class: learnable in a few epochs."""
    generator = torch.Generator().manual_seed(0)
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            image = torch.randint(0, 120, (HEIGHT, WIDTH, 3), generator=generator)
            image[..., label % 3] += 100
            if label >= 3:
                image[: HEIGHT // 2, : WIDTH // 2] = 250
            Image.fromarray(image.clamp(0, 255).to(torch.uint8).numpy()).save(root / name / f"{index}.png")


def git(project: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True)
    return result.stdout


def changed_files(project: Path) -> set[str]:
    """Format the code as the project's pre-commit hook would, then commit: the files that changed."""
    run(python("-m", "ruff", "format", "--no-cache", "."), cwd=project)
    git(project, "add", "-A")
    changed = set(git(project, "diff", "--cached", "--name-only").split())
    git(project, "commit", "-q", "-m", "change")
    return changed


def passes_lint_and_tests(project: Path, whole: bool) -> str:
    """The project's own lint and its quick tests, or its ``whole`` suite; no skip but an optional hook's."""
    run(python("-m", "ruff", "check", "--no-cache", "."), cwd=project)
    run(python("-m", "ruff", "format", "--check", "--no-cache", "."), cwd=project)
    quick = [] if whole else ["-m", "not slow"]
    timeout = WHOLE_SUITE_TIMEOUT if whole else COMMAND_TIMEOUT
    result = run(
        python("-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-x", *quick),
        cwd=project,
        timeout=timeout,
    )
    assert re.search(r"\d+ passed", result.stdout) and "failed" not in result.stdout, result.stdout
    for reason in re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", result.stdout, re.MULTILINE):
        assert any(hook in reason for hook in HOOK_SKIPS), f"skipped for another reason: {reason}"
    return result.stdout


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == count, f"{path}: {old!r} found {text.count(old)} times"
    path.write_text(text.replace(old, new), encoding="utf-8")


def replace_section(project: Path, name: str, section: dict) -> None:
    """Replace the top-level ``name:`` section of configs/config.yaml, comments and all, with ``section``."""
    config = project / "configs" / "config.yaml"
    text = config.read_text(encoding="utf-8")
    old = re.search(rf"^{name}:\n(?:  .*\n)+", text, re.MULTILINE).group(0)
    config.write_text(text.replace(old, yaml.safe_dump({name: section}, sort_keys=False)), encoding="utf-8")


def monitor(project: Path, metric: str, mode: str) -> None:
    """The metric that picks the best checkpoint and stops early, in both callbacks of the config."""
    config = project / "configs" / "config.yaml"
    edit(config, "monitor: val/loss", f"monitor: {metric}", count=2)
    edit(config, "mode: min", f"mode: {mode}", count=2)


def sweep_for(project: Path, metric: str, direction: str, params: dict) -> None:
    """configs/sweep.yaml searching ``params`` for the best ``metric``."""
    path = project / "configs" / "sweep.yaml"
    sweep = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(
        yaml.safe_dump({**sweep, "metric": metric, "direction": direction, "params": params}),
        encoding="utf-8",
    )


@pytest.fixture
def project(rendered, tmp_path) -> Path:
    project = Path(shutil.copytree(rendered("default"), tmp_path / "project"))
    git(project, "init", "-q")
    git(project, "-c", "user.name=t", "-c", "user.email=t@e", "add", "-A")
    git(project, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "generated")
    git(project, "config", "user.name", "Team")
    git(project, "config", "user.email", "team@example.com")
    return project


def narrower_network_and_own_metric(project: Path, tmp_path: Path) -> set[str]:
    """(a) A narrower network, and macro F1 as the metric that picks the best checkpoint (higher better)."""
    module = project / PACKAGE / "lightning" / "module.py"
    metric = "MulticlassAccuracy"
    edit(module, f"import {metric}\n", f"import {metric}, MulticlassF1Score\n")
    last_metric = '        self.test_acc = MulticlassAccuracy(num_classes, average="micro")\n'
    edit(
        module,
        last_metric,
        last_metric + '        self.val_f1 = MulticlassF1Score(num_classes, average="macro")\n',
    )
    validation = "    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:\n"
    f1 = '        self.val_f1.update(self(batch[0]), batch[1])\n        self.log("val/f1", self.val_f1)\n'
    edit(module, validation, validation + f1)
    edit(project / "configs" / "config.yaml", "hidden_dims: [128, 64]", "hidden_dims: [32]")
    monitor(project, "val/f1", "max")
    return {"configs/config.yaml", f"{PACKAGE}/lightning/module.py"}


def own_data(project: Path, tmp_path: Path) -> set[str]:
    """(b) The team's own data: a DataModule in data/, the data section of the config, one dependency line."""
    images = tmp_path / "our-images"
    write_pngs(images)
    (project / PACKAGE / "data" / "pngs.py").write_text(PNG_DATAMODULE, encoding="utf-8")
    data = {"class_path": f"{PACKAGE}.data.pngs.PngDataModule", "init_args": {"root": str(images)}}
    replace_section(project, "data", {**data, "init_args": {**data["init_args"], "batch_size": 16}})
    dependency = '    "torchmetrics>=1.4",\n'
    edit(project / "pyproject.toml", dependency, dependency + '    "pillow>=10",\n')
    return {f"{PACKAGE}/data/pngs.py", "configs/config.yaml", "pyproject.toml"}


def label_smoothing(project: Path, tmp_path: Path) -> set[str]:
    """(c) A new hyperparameter and label smoothing in the LightningModule."""
    module = project / PACKAGE / "lightning" / "module.py"
    argument = "        weight_decay: float = 1e-4,\n"
    edit(module, argument, argument + "        label_smoothing: float = 0.1,\n")
    documented = "        weight_decay: AdamW weight decay.\n"
    meaning = "Share of each target's probability spread over the other classes."
    edit(module, documented, documented + f"        label_smoothing: {meaning}\n")
    loss = "return F.cross_entropy(logits, labels"
    edit(module, loss + ")", loss + ", label_smoothing=self.hparams.label_smoothing)")
    return {f"{PACKAGE}/lightning/module.py"}


FIRST_WEEK = [narrower_network_and_own_metric, own_data, label_smoothing]


# One test per change, each applying the changes before it too, so that the runs can go to different workers.
@pytest.mark.parametrize("step", range(len(FIRST_WEEK)), ids=[change.__name__ for change in FIRST_WEEK])
def test_a_first_week_change_keeps_the_tests_green(project, tmp_path, step):
    for change in FIRST_WEEK[: step + 1]:
        touched = change(project, tmp_path)
        assert changed_files(project) == touched, change.__name__
    passes_lint_and_tests(project, whole=step == len(FIRST_WEEK) - 1)
    if FIRST_WEEK[step] is own_data:
        # A run on the team's data records its class names and shape in the checkpoint.
        logs = tmp_path / "logs"
        options = ["--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
        run(python("train.py", "fit", *options, f"--trainer.logger.init_args.save_dir={logs}"), cwd=project)
        (last,) = logs.rglob("last.ckpt")
        hparams = torch.load(last, weights_only=True)["hyper_parameters"]
        assert tuple(hparams["class_names"]) == CLASSES
        assert tuple(hparams["input_shape"]) == (3, HEIGHT, WIDTH)


def copy_team_files(project: Path, team: str) -> set[str]:
    """The team's files (``tests/teams/<team>/``) written into the project at the same paths."""
    written = set()
    for source in (TEAMS / team).rglob("*.py"):
        relative = source.relative_to(TEAMS / team)
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, project / relative)
        written.add(str(relative))
    return written


def regression_from_the_docs(project: Path) -> None:
    """A plain DataModule and LightningModule, as Lightning's documentation writes them: no optional hook."""
    model = {
        "class_path": f"{PACKAGE}.lightning.module.LitRegressor",
        "init_args": {"hidden": 64, "lr": 0.01},
    }
    replace_section(project, "model", model)
    data = {"class_path": f"{PACKAGE}.data.diabetes.DiabetesData", "init_args": {"batch_size": 32}}
    replace_section(project, "data", data)
    monitor(project, "val_loss", "min")
    search = {
        "model.init_args.lr": {"low": 0.001, "high": 0.1, "log": True},
        "model.init_args.hidden": {"choices": [32, 64]},
    }
    sweep_for(project, "val_loss", "minimize", search)


def token_task(project: Path) -> None:
    """A token-sequence classifier whose vocabulary size and class names come from its DataModule."""
    model = {
        "class_path": f"{PACKAGE}.lightning.module.MarkerClassifier",
        "init_args": {"width": 32, "lr": 0.05},
    }
    replace_section(project, "model", model)
    data = {"class_path": f"{PACKAGE}.data.sequences.MarkedSequences", "init_args": {"batch_size": 64}}
    replace_section(project, "data", data)
    search = {
        "model.init_args.lr": {"low": 0.001, "high": 0.1, "log": True},
        "model.init_args.width": {"choices": [16, 32]},
    }
    sweep_for(project, "val/accuracy", "maximize", search)


@pytest.mark.parametrize(
    ("team", "configure"), [("regression", regression_from_the_docs), ("tokens", token_task)]
)
def test_another_task_passes_the_whole_suite(project, team, configure):
    written = copy_team_files(project, team)
    configure(project)
    assert changed_files(project) == written | {"configs/config.yaml", "configs/sweep.yaml"}
    own = (f"{PACKAGE}/data/", f"{PACKAGE}/models/", f"{PACKAGE}/lightning/", "tests/test_example.py")
    assert all(path.startswith(own) for path in written)
    passes_lint_and_tests(project, whole=True)
