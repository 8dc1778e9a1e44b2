"""Every option is real, in every pairwise combination (an all-pairs set of answers).

For each combination: the exact set of files it needs, lint, every TOML/YAML parses, the configured checks
(CI, Docker, pre-commit) are what they claim. For each (logger, example) pair, which is all the code an
option changes: the generated project's own fast tests, and a short real training whose metrics are read
back through the chosen logger's own files or client.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import re
import shutil
import struct
import tomllib
from pathlib import Path

import pytest
import yaml
from allpairspy import AllPairs
from conftest import TEMPLATE, python, render, run
from logger_metrics import READERS
from packaging.version import Version

OPTIONS = {
    "logger": ["tensorboard", "csv", "mlflow", "wandb"],
    "example": ["digits", "mnist"],
    "ci": ["github", "gitlab", "none"],
    "docker": [True, False],
    "slurm": [True, False],
}
COMBINATIONS = [dict(zip(OPTIONS, values, strict=True)) for values in AllPairs(list(OPTIONS.values()))]
IDS = ["-".join(str(value) for value in combo.values()) for combo in COMBINATIONS]
# The first combination of each (logger, example) pair: these differ in code, the others only in files.
CODE_VARIANTS = {(c["logger"], c["example"]): c for c in reversed(COMBINATIONS)}
PACKAGE = "digits_classifier"
LOGGER_DEPENDENCY = {
    "tensorboard": "tensorboard",
    "csv": None,
    "mlflow": "mlflow-skinny",
    "wandb": "wandb",
}
LOGGER_WORDS = {
    "tensorboard": "tensorboard",
    "csv": "csvlogger",
    "mlflow": "mlflow",
    "wandb": "wandb",
}
SLURM_FOLDER = TEMPLATE / "{{cookiecutter.project_slug}}" / "scripts" / "slurm"
SLURM_CONDITION, END = "{% if cookiecutter.slurm %}", "{% endif %}"


def expected_files(options: dict) -> set[str]:
    """The files a project generated with ``options`` (and default names) must have, and no others."""
    package = [
        "__init__.py", "callbacks.py", "checkpointing.py", "checks.py", "cli.py", "export.py", "runs.py",
        "data/__init__.py",
        "data/dataset.py", "lightning/__init__.py", "lightning/module.py", "models/__init__.py",
        "models/classifier.py",
    ]  # fmt: skip
    files = {
        ".gitignore", ".pre-commit-config.yaml", "LICENSE", "README.md", "pyproject.toml", "train.py",
        "configs/config.yaml", "tests/conftest.py", "tests/metrics.py", "tests/test_data.py",
        "tests/test_model.py", "tests/test_training.py", "export.py", "scripts/torchrun_multinode.sh",
        "configs/profiles/cpu_ddp.yaml", "configs/profiles/ddp.yaml", "configs/profiles/gpu.yaml",
        "configs/profiles/multinode.yaml",
        *(f"{PACKAGE}/{name}" for name in package),
    }  # fmt: skip
    if options["example"] == "mnist":
        files.add("tests/fake_mnist.py")
    else:
        # The export and inference tests are written for digits (and the inference ones for version_N runs).
        files |= {"tests/test_export.py", "tests/test_errors.py"}
        if options["logger"] in ("tensorboard", "csv"):
            files.add("tests/test_inference.py")
        if options["logger"] == "tensorboard":
            # The fault, distributed and GPU tests read TensorBoard's event files of the digits run.
            files |= {
                "tests/faults.py", "tests/test_distributed.py", "tests/test_gpu.py",
                "tests/test_resilience.py", "scripts/gpu_check.sh",
            }  # fmt: skip
    files |= {
        "github": {".github/workflows/ci.yml"},
        "gitlab": {".gitlab-ci.yml"},
        "none": set(),
    }[options["ci"]]
    if options["docker"]:
        files |= {"Dockerfile", ".dockerignore"}
    if options["slurm"] and SLURM_FOLDER.is_dir():
        names = (path.name.removeprefix(SLURM_CONDITION).removesuffix(END) for path in SLURM_FOLDER.iterdir())
        files |= {f"scripts/slurm/{name}" for name in names}
    return files


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """``project(index)``: the project rendered from ``COMBINATIONS[index]``, once per module."""
    projects: dict[int, Path] = {}

    def get(index: int) -> Path:
        if index not in projects:
            projects[index] = render(tmp_path_factory.mktemp(f"combo{index}-"), **COMBINATIONS[index])
        return projects[index]

    return get


def text_files(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*") if path.is_file() and "__pycache__" not in path.parts)


def test_combinations_cover_every_pair():
    for (first, first_values), (second, second_values) in itertools.combinations(OPTIONS.items(), 2):
        seen = {(combo[first], combo[second]) for combo in COMBINATIONS}
        assert seen == set(itertools.product(first_values, second_values)), (
            first,
            second,
        )
    assert len(CODE_VARIANTS) == len(OPTIONS["logger"]) * len(OPTIONS["example"])


def test_options_are_declared_with_prompts():
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
    for name, values in OPTIONS.items():
        default = context[name]
        assert default == values if isinstance(default, list) else default is False, name
        assert name in context["__prompts__"], name
    assert context["logger"][0] == "tensorboard" and context["example"][0] == "digits"
    # The SLURM scripts, once present, must be pruned with the option: each file named conditionally.
    if SLURM_FOLDER.exists():
        assert all(path.name.startswith(SLURM_CONDITION) for path in SLURM_FOLDER.iterdir())


@pytest.mark.parametrize("index", range(len(COMBINATIONS)), ids=IDS)
def test_exactly_the_files_it_needs(project, index):
    root = project(index)
    found = {str(path.relative_to(root)) for path in text_files(root)}
    assert found == expected_files(COMBINATIONS[index])
    assert not any(path.is_dir() and not any(path.iterdir()) for path in root.rglob("*")), "empty folder"


@pytest.mark.parametrize("index", range(len(COMBINATIONS)), ids=IDS)
def test_lint_parse_and_only_the_chosen_logger(project, index):
    options, root = COMBINATIONS[index], project(index)
    run(python("-m", "ruff", "check", "--no-cache", "."), cwd=root)
    run(python("-m", "ruff", "format", "--check", "--no-cache", "."), cwd=root)
    for path in text_files(root):
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            yaml.safe_load(text)
        # What the pre-commit hygiene hooks (trailing-whitespace, end-of-file-fixer) would change.
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{path}: final newline"
        assert not re.search(r"[ \t]$", text, re.MULTILINE), f"{path}: trailing whitespace"
    dependencies = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    names = {re.split(r"[<>=\[]", dependency)[0] for dependency in dependencies}
    chosen = LOGGER_DEPENDENCY[options["logger"]]
    assert names & set(filter(None, LOGGER_DEPENDENCY.values())) == ({chosen} if chosen else set())
    assert ("scikit-learn" in names) == (options["example"] == "digits")
    config = yaml.safe_load((root / "configs" / "config.yaml").read_text(encoding="utf-8"))
    logger = config["trainer"]["logger"]
    assert (
        logger["class_path"]
        .lower()
        .endswith(LOGGER_WORDS[options["logger"]].replace("csvlogger", "csv") + "logger")
    )
    assert options["example"] in logger["init_args"].values()
    for name in ("configs/config.yaml", "pyproject.toml", "README.md"):
        text = (root / name).read_text(encoding="utf-8").lower()
        for other, word in LOGGER_WORDS.items():
            if other != options["logger"]:
                assert word not in text, f"{name} mentions {other}"
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert ("tensorboard --logdir logs" in readme) == (options["logger"] == "tensorboard")


@pytest.mark.parametrize("index", range(len(COMBINATIONS)), ids=IDS)
def test_ci_installs_cpu_torch_then_lints_and_tests(project, index):
    options, root = COMBINATIONS[index], project(index)
    if options["ci"] == "github":
        workflow = yaml.safe_load((root / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
        assert {"push", "pull_request"} <= set(workflow[True])  # YAML 1.1 reads the key `on` as True
        steps = workflow["jobs"]["test"]["steps"]
        assert steps[1]["with"]["python-version"] == "3.11"
        script = "\n".join(step.get("run", "") for step in steps)
    elif options["ci"] == "gitlab":
        job = yaml.safe_load((root / ".gitlab-ci.yml").read_text(encoding="utf-8"))["test"]
        assert job["image"] == "python:3.11-slim"
        script = "\n".join(job["script"])
    else:
        return
    order = [
        "pip install torch --index-url https://download.pytorch.org/whl/cpu",
        'pip install -e ".[dev]"',
        "ruff check .",
        "ruff format --check .",
        "pytest",
    ]
    positions = [script.find(command) for command in order]
    assert -1 not in positions and positions == sorted(positions), script


@pytest.mark.parametrize("index", range(len(COMBINATIONS)), ids=IDS)
def test_dockerfile_caches_dependencies_and_runs_unprivileged(project, index):
    options, root = COMBINATIONS[index], project(index)
    if not options["docker"]:
        return
    lines = re.sub(r"\\\n", " ", (root / "Dockerfile").read_text(encoding="utf-8")).splitlines()
    instructions = [line.split(None, 1) for line in lines if line.strip() and not line.startswith("#")]
    kinds = [kind for kind, _ in instructions]
    assert kinds[0] == "ARG" and kinds[1] == "FROM" and "cuda" in instructions[0][1]
    copies = [index for index, (kind, _) in enumerate(instructions) if kind == "COPY"]
    assert instructions[copies[0]][1] == "pyproject.toml ./", "dependencies must be installed before the code"
    install = next(
        i for i, (kind, args) in enumerate(instructions) if kind == "RUN" and "pip install" in args
    )
    assert copies[0] < install < copies[1] and instructions[copies[1]][1].endswith(". .")
    user = [args for kind, args in instructions if kind == "USER"]
    assert user and user[-1] not in ("root", "0") and kinds.index("USER") > install
    assert kinds[-2:] == ["ENTRYPOINT", "CMD"] and "train.py" in instructions[-2][1]
    ignored = (root / ".dockerignore").read_text(encoding="utf-8").split()
    assert {"logs/", "data/", ".git/", "*.ckpt", ".venv/"} <= set(ignored)


@pytest.mark.parametrize("index", range(len(COMBINATIONS)), ids=IDS)
def test_pre_commit_config_is_valid_and_uses_ruff(project, index):
    root = project(index)
    run(
        python("-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"),
        cwd=root,
    )
    repos = {
        repo["repo"]: repo for repo in yaml.safe_load((root / ".pre-commit-config.yaml").read_text())["repos"]
    }
    ruff = repos["https://github.com/astral-sh/ruff-pre-commit"]
    assert {hook["id"] for hook in ruff["hooks"]} == {"ruff-check", "ruff-format"}
    # The hook's ruff must be at least the one the dev extra asks for: same rules, same formatting.
    dev = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    minimum = next(d.split(">=")[1] for d in dev if d.startswith("ruff"))
    assert Version(ruff["rev"].removeprefix("v")) >= Version(minimum)
    hygiene = {hook["id"] for hook in repos["https://github.com/pre-commit/pre-commit-hooks"]["hooks"]}
    assert {
        "trailing-whitespace",
        "end-of-file-fixer",
        "check-yaml",
        "check-toml",
    } <= hygiene


def write_idx(path: Path, dims: tuple[int, ...], values: bytes) -> str:
    """A gzipped IDX file of unsigned bytes; returns its SHA-256."""
    header = struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(gzip.compress(header + values, mtime=0))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_mnist(root: Path) -> list[str]:
    """Four small MNIST-format files; the train.py options that use them instead of downloading."""
    root.mkdir()
    checksums = {}
    for prefix, size in (("train", 600), ("t10k", 64)):
        labels = bytes(index % 10 for index in range(size))
        images = bytes((index * 7 + label * 25) % 256 for label in labels for index in range(28 * 28))
        for name, dims, values in (
            ("images-idx3", (size, 28, 28), images),
            ("labels-idx1", (size,), labels),
        ):
            filename = f"{prefix}-{name}-ubyte.gz"
            checksums[filename] = write_idx(root / filename, dims, values)
    return [f"--data.data_dir={root}", f"--data.checksums={json.dumps(checksums)}"]


SHORT_FIT = [
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=2",
    "--trainer.log_every_n_steps=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


@pytest.mark.parametrize("pair", list(CODE_VARIANTS), ids=["-".join(pair) for pair in CODE_VARIANTS])
def test_trains_with_its_logger(project, tmp_path, pair):
    logger, example = pair
    root = Path(shutil.copytree(project(COMBINATIONS.index(CODE_VARIANTS[pair])), tmp_path / "project"))
    data_args = tiny_mnist(tmp_path / "mnist") if example == "mnist" else []
    run(python("train.py", "fit", *data_args, *SHORT_FIT), cwd=root)
    metrics = READERS[logger](root / "logs", example)
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr-AdamW"} <= set(metrics), sorted(metrics)
    assert len(metrics["val/acc"]) == 2 and len(metrics["train/loss"]) == 8
    assert all(0.0 <= value <= 1.0 for value in metrics["val/acc"] + metrics["train/acc"])
    assert list(root.glob("logs/**/checkpoints/last.ckpt")), "no checkpoint written"
    assert not (root / "data").exists(), "nothing may be downloaded"


# The generated tests differ by logger (tests/metrics.py) and by example (data tests, stand-in MNIST), not by
# their combination: each logger once, each example at least once, is enough (the default project, which is
# tensorboard + digits, runs its tests in test_generated_project.py). This keeps the matrix within budget.
GENERATED_TEST_PAIRS = [("tensorboard", "mnist"), ("csv", "mnist"), ("mlflow", "digits"), ("wandb", "digits")]


def test_generated_test_pairs_cover_every_logger_and_example():
    loggers, examples = zip(*GENERATED_TEST_PAIRS, strict=True)
    assert set(loggers) == set(OPTIONS["logger"]) and set(examples) == set(OPTIONS["example"])


@pytest.mark.parametrize("pair", GENERATED_TEST_PAIRS, ids=["-".join(pair) for pair in GENERATED_TEST_PAIRS])
def test_generated_tests_pass(project, tmp_path, pair):
    root = Path(shutil.copytree(project(COMBINATIONS.index(CODE_VARIANTS[pair])), tmp_path / "project"))
    result = run(python("-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"), cwd=root)
    assert re.search(r"\d+ passed", result.stdout) and "failed" not in result.stdout
