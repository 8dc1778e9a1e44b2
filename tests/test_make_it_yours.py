"""A team's first week: three ordinary changes, each leaving the generated project's tests green.

(a) a wider and deeper network, in the config only; (b) the team's own data: a DataModule the test writes
for a folder of PNG images of another shape, with another number of classes and class names that are not
numbers, touching only ``data/``, the config and one dependency line; (c) a new hyperparameter and label
smoothing in ``lightning/module.py``. No test file is edited, and git shows that nothing else was. After
each change the project's lint and quick tests pass, and after all three its whole suite (the slow tests
repeat the quick ones' runs with several processes and faults, minutes each time).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import COMMAND_TIMEOUT, WHOLE_SUITE_TIMEOUT, python, run
from PIL import Image

pytestmark = pytest.mark.slow

PACKAGE = "digits_classifier"
CLASSES = ("cat", "dog", "fox", "owl")
HEIGHT, WIDTH = 10, 12

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

    normalization = {"scale": 255.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}

    def __init__(self, root: str, batch_size: int = 16, seed: int = 0) -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_size = batch_size
        self.seed = seed
        self.class_names = tuple(sorted(p.name for p in self.root.iterdir() if p.is_dir()))
        first = next(self.root.glob("*/*.png"))
        width, height = Image.open(first).size
        self.input_shape = (3, height, width)
        self.splits: dict[str, TensorDataset] = {}

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
    """The project's own lint and its quick tests, or its ``whole`` suite."""
    run(python("-m", "ruff", "check", "--no-cache", "."), cwd=project)
    run(python("-m", "ruff", "format", "--check", "--no-cache", "."), cwd=project)
    quick = [] if whole else ["-m", "not slow"]
    timeout = WHOLE_SUITE_TIMEOUT if whole else COMMAND_TIMEOUT
    result = run(
        python("-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *quick), cwd=project, timeout=timeout
    )
    assert re.search(r"\d+ passed", result.stdout) and "failed" not in result.stdout, result.stdout
    return result.stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path}: {old!r} found {text.count(old)} times"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def project(rendered, tmp_path) -> Path:
    project = Path(shutil.copytree(rendered("default"), tmp_path / "project"))
    git(project, "init", "-q")
    git(project, "-c", "user.name=t", "-c", "user.email=t@e", "add", "-A")
    git(project, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "generated")
    git(project, "config", "user.name", "Team")
    git(project, "config", "user.email", "team@example.com")
    return project


def wider_network(project: Path, tmp_path: Path) -> set[str]:
    """(a) A wider and deeper network: one line of config."""
    edit(project / "configs" / "config.yaml", "hidden_dims: [128, 64]", "hidden_dims: [256, 128, 64]")
    return {"configs/config.yaml"}


def own_data(project: Path, tmp_path: Path) -> set[str]:
    """(b) The team's own data: a DataModule in data/, the data section of the config, one dependency line."""
    images = tmp_path / "our-images"
    write_pngs(images)
    (project / PACKAGE / "data" / "pngs.py").write_text(PNG_DATAMODULE, encoding="utf-8")
    config = project / "configs" / "config.yaml"
    text = config.read_text(encoding="utf-8")
    data_section = re.search(r"^data:\n(?:  .*\n)+", text, re.MULTILINE).group(0)
    ours = f"data:\n  class_path: {PACKAGE}.data.pngs.PngDataModule\n  init_args:\n    root: {images}\n"
    config.write_text(text.replace(data_section, ours + "    batch_size: 16\n"), encoding="utf-8")
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


CHANGES = [wider_network, own_data, label_smoothing]


# One test per change, each applying the changes before it too, so that the runs can go to different workers.
@pytest.mark.parametrize("step", range(len(CHANGES)), ids=[change.__name__ for change in CHANGES])
def test_a_first_week_change_keeps_the_tests_green(project, tmp_path, step):
    for change in CHANGES[: step + 1]:
        touched = change(project, tmp_path)
        assert changed_files(project) == touched, change.__name__
    output = passes_lint_and_tests(project, whole=step == len(CHANGES) - 1)
    skipped = re.search(r"(\d+) skipped", output)
    assert not skipped or int(skipped.group(1)) == (0 if torch.cuda.is_available() else 1), output
    if CHANGES[step] is own_data:
        # A run on the team's data records its class names and shape in the checkpoint.
        logs = tmp_path / "logs"
        options = ["--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
        run(python("train.py", "fit", *options, f"--trainer.logger.init_args.save_dir={logs}"), cwd=project)
        (last,) = logs.rglob("last.ckpt")
        hparams = torch.load(last, weights_only=True)["hyper_parameters"]
        assert tuple(hparams["class_names"]) == CLASSES
        assert tuple(hparams["input_shape"]) == (3, HEIGHT, WIDTH)
