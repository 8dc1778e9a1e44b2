"""Every option is real, in every pairwise combination (an all-pairs set of answers).

The options and their values are read from cookiecutter.json, and the files each value owns from the
post-generation hook's table: nothing here restates them. For each combination: exactly the files it
needs, lint, every TOML/YAML parses, the configured checks (CI, Docker, pre-commit) are what they claim,
and the README and config state only facts of the chosen example. For each (logger, example) pair, which is
all the code an option changes: a short real training whose metrics are read back through the chosen
logger's own files or client.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from allpairspy import AllPairs
from conftest import (
    COMMAND_TIMEOUT,
    TEMPLATE,
    WHOLE_SUITE_TIMEOUT,
    environment,
    python,
    render,
    run,
    run_script,
)
from logger_metrics import READERS, wandb_run_file
from packaging.version import Version

CONTEXT = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
# Every choice (a list) and every yes/no (a boolean) of cookiecutter.json; the license is a choice of text,
# checked by test_render.py for each value.
OPTIONS = {
    name: value if isinstance(value, list) else [value, not value]
    for name, value in CONTEXT.items()
    if not name.startswith("_") and isinstance(value, list | bool) and name != "license"
}
COMBINATIONS = [dict(zip(OPTIONS, values, strict=True)) for values in AllPairs(list(OPTIONS.values()))]
IDS = ["-".join(str(value) for value in combo.values()) for combo in COMBINATIONS]
# The first combination of each (logger, example) pair: these differ in code, the others only in files.
CODE_VARIANTS = {(c["logger"], c["example"]): c for c in reversed(COMBINATIONS)}
PACKAGE = "digits_classifier"
SLUG = "digits-classifier"
PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"
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
# Facts that only one example's README and config may state.
EXAMPLE_FACTS = {
    "digits": ["8x8", "1,797", "pixels / 16"],
    "mnist": ["MNIST", "28x28", "60,000"],
    "folder": ["data/images", "sub-folder per class", "Pillow"],
    "diabetes": ["diabetes", "442 patients"],
    "tokens": ["motif", "vocab_size"],
}
# The metrics each task's LightningModule logs besides train/loss and val/loss, with their range.
TASK_METRICS = {
    "regressor": {"val/r2": (-float("inf"), 1.0), "val/mae": (0.0, float("inf"))},
    "classifier": {"train/acc": (0.0, 1.0), "val/acc": (0.0, 1.0)},
}
WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]|[. ]$|^(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(\.|$)', re.IGNORECASE)


def option_files() -> dict[str, dict]:
    """The post-generation hook's table of the files each option value owns, read without running it."""
    source = (TEMPLATE / "hooks" / "post_gen_project.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == [
            "OPTION_FILES"
        ]:
            return ast.literal_eval(node.value)
    raise AssertionError("post_gen_project.py has no literal OPTION_FILES table")


def template_files() -> set[str]:
    """Every file of the project template, under the names a default render gives them."""
    tracked = subprocess.run(
        ["git", "ls-files", "--", "{{cookiecutter.project_slug}}"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    prefix = "{{cookiecutter.project_slug}}/"
    return {path.removeprefix(prefix).replace("{{cookiecutter.package_name}}", PACKAGE) for path in tracked}


def expected_files(options: dict) -> set[str]:
    """The files a project generated with ``options`` (and default names) must have, and no others.

    ``.cruft.json`` too: the hook links every project rendered from a git checkout, as the tests render.
    """
    removed, kept = set(), set()
    for option, files_of in option_files().items():
        for value, paths in files_of.items():
            chosen = value == options.get(option, CONTEXT[option][0] if option == "license" else None)
            (kept if chosen else removed).update(p.format(package=PACKAGE) for p in paths)
    removed -= kept
    return {".cruft.json"} | {
        path
        for path in template_files()
        if not any(path == gone or path.startswith(gone + "/") for gone in removed)
    }


def test_every_template_path_is_portable():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=TEMPLATE, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert tracked
    bad = [path for path in tracked for part in path.split("/") if WINDOWS_FORBIDDEN.search(part)]
    assert not bad, f"paths Windows cannot check out: {bad}"


def test_the_hook_table_covers_every_value_and_names_real_files():
    table = option_files()
    assert set(table) <= set(OPTIONS) | {"license"}  # options that own no file (the logger) are absent
    files = template_files()
    for option, files_of in table.items():
        values = CONTEXT[option] if isinstance(CONTEXT[option], list) else [True, False]
        assert list(files_of) == values, option
        for path in itertools.chain.from_iterable(files_of.values()):
            path = path.format(package=PACKAGE)
            assert any(f == path or f.startswith(path + "/") for f in files), (
                f"{option}: {path} does not exist"
            )


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
    for name in OPTIONS:
        assert name in CONTEXT["__prompts__"], name
    assert CONTEXT["logger"][0] == "tensorboard" and CONTEXT["example"][0] == "digits"


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
    assert ("scikit-learn" in names) == (options["example"] in ("digits", "diabetes"))
    config = yaml.safe_load((root / "configs" / "config.yaml").read_text(encoding="utf-8"))
    logger = config["trainer"]["logger"]
    assert (
        logger["class_path"]
        .lower()
        .endswith(LOGGER_WORDS[options["logger"]].replace("csvlogger", "csv") + "logger")
    )
    # Runs are named after the project, whatever the example.
    assert SLUG in logger["init_args"].values()
    assert config["data"]["class_path"].startswith(f"{PACKAGE}.data.{options['example']}.")
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
    # torchvision, which the folder example needs, must come from the same index as the CPU torch.
    packages = "torch torchvision" if options["example"] == "folder" else "torch"
    order = [
        f"pip install {packages} --index-url https://download.pytorch.org/whl/cpu",
        'pip install -e ".[dev]"',
        "ruff check .",
        "ruff format --check .",
        "pytest",
    ]
    positions = [script.find(command) for command in order]
    assert -1 not in positions and positions == sorted(positions), script


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_ci_validates_against_the_official_schema_and_updates_from_the_template_weekly(project, ci):
    index = next(index for index, combination in enumerate(COMBINATIONS) if combination["ci"] == ci)
    root = project(index)
    if ci == "github":
        files = sorted((root / ".github" / "workflows").glob("*.yml"))
        schema = "vendor.github-workflows"
        update = yaml.safe_load((root / ".github" / "workflows" / "template-update.yml").read_text())
        assert [entry["cron"] for entry in update[True]["schedule"]] and "workflow_dispatch" in update[True]
        steps = update["jobs"]["update"]["steps"]
        script, request = steps[-2]["run"], steps[-1]
        # The request is its own step, taken only when the script printed a branch.
        assert request["if"] == "steps.update.outputs.branch != ''" and "gh pr create" in request["run"]
    else:
        files = [root / ".gitlab-ci.yml"]
        schema = "vendor.gitlab-ci"
        jobs = yaml.safe_load(files[0].read_text())
        update = jobs["template-update"]
        assert update["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule" && $TEMPLATE_UPDATE == "true"'}]
        assert jobs["test"]["rules"] == [{"if": '$TEMPLATE_UPDATE != "true"'}]
        script, request = "\n".join(update["script"][:-1]), update["script"][-1]
        assert request.startswith('if [ -n "$branch" ]') and "merge_request.create" in request
    assert "python scripts/update_from_template.py" in script and "cruft" in script
    # Offline: the schemas come with check-jsonschema.
    checker = Path(sys.executable).with_name("check-jsonschema")
    run([str(checker), "--builtin-schema", schema, *map(str, files)], cwd=root)


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
    # docker stop must reach train.py and leave it time to save; several GPUs need more than 64 MB of shm.
    assert ["STOPSIGNAL", "SIGTERM"] in instructions
    readme = (root / "README.md").read_text(encoding="utf-8")
    (command,) = [line for line in readme.splitlines() if line.startswith("docker run")]
    assert {"--init", "--stop-timeout=120", "--shm-size=16g"} <= set(command.split())
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


STAND_IN = """\
import json, sys, yaml
from pathlib import Path
from importlib import import_module
path = yaml.safe_load(open('configs/config.yaml'))['data']['class_path']
module, _, name = path.rpartition('.')
print(json.dumps(getattr(import_module(module), name).stand_in(Path(sys.argv[1]))))
"""


def stand_in_args(root: Path, folder: Path) -> list[str]:
    """The train.py options that point the project at the stand-in data its DataModule's hook writes."""
    script = folder.parent / "stand_in.py"
    script.write_text(STAND_IN, encoding="utf-8")
    arguments = json.loads(run_script(root, script, str(folder)).splitlines()[-1])
    return [
        f"--data.init_args.{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in arguments.items()
    ]


SHORT_FIT = [
    "--trainer.max_epochs=2",
    "--data.init_args.batch_size=8",  # at least 4 batches of every example's stand-in data
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
    run_script(root, root / "train.py", "fit", *stand_in_args(root, tmp_path / "data"), *SHORT_FIT)
    metrics = READERS[logger](root / "logs", SLUG)
    task = TASK_METRICS["regressor" if example == "diabetes" else "classifier"]
    assert {"train/loss", "val/loss", "lr-AdamW", *task} <= set(metrics), sorted(metrics)
    assert len(metrics["val/loss"]) == 2 and len(metrics["train/loss"]) == 8
    for name, (low, high) in task.items():
        assert all(low <= value <= high for value in metrics[name]), (name, metrics[name])
    assert list(root.glob("logs/**/checkpoints/last.ckpt")), "no checkpoint written"
    assert not (root / "data").exists(), "nothing may be downloaded"
    (run_folder,) = {path.parents[1] for path in root.glob("logs/**/checkpoints/last.ckpt")}
    assert (run_folder / "config.yaml").is_file(), "the run's config belongs in its own folder"
    (attempt,) = json.loads((run_folder / "provenance.json").read_text(encoding="utf-8"))["attempts"]
    assert attempt["outcome"] == "completed" and attempt["run"] == str(run_folder.resolve())


@pytest.mark.parametrize("example", OPTIONS["example"])
def test_a_bad_data_setting_is_one_line_naming_it(project, example):
    """Every example's DataModule refuses a validation share outside (0, 1): one line, no traceback."""
    combination = next(combo for (_, code_example), combo in CODE_VARIANTS.items() if code_example == example)
    root = project(COMBINATIONS.index(combination))
    result = subprocess.run(
        python("train.py", "fit", "--data.val_fraction=1.5"),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=environment(),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith("error: data.val_fraction 1.5"), result.stderr


def test_the_wandb_reader_takes_every_folder_of_a_run_and_only_those():
    # A resume that starts in the second its run started gets the run's folder name with "-1" after it.
    reader = wandb_run_file()
    names = [
        "offline-run-20261129_182156-0qgufibd",
        "offline-run-20261129_182156-0qgufibd-1",
        "offline-run-20261129_182159-0qgufibdx",
    ]
    assert [reader.run_id(Path(name)) for name in names] == ["0qgufibd", "0qgufibd", "0qgufibdx"]
    assert [bool(reader.run_folder("0qgufibd").fullmatch(name)) for name in names] == [True, True, False]


@pytest.mark.parametrize("index", range(len(COMBINATIONS)), ids=IDS)
def test_readme_and_config_state_only_the_chosen_examples_facts(project, index):
    options, root = COMBINATIONS[index], project(index)
    for name in ("README.md", "configs/config.yaml"):
        text = (root / name).read_text(encoding="utf-8")
        for example, facts in EXAMPLE_FACTS.items():
            for fact in facts:
                if example != options["example"]:
                    assert fact not in text, f"{name} of a {options['example']} project says {fact!r}"
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert any(fact in readme for fact in EXAMPLE_FACTS[options["example"]])
    assert "## Bring your own task" in readme


# The generated tests differ by logger (tests/infra/metrics.py) and by example (stand-in data, the example's
# own tests), not by their combination: every logger and every example once is enough. The default
# (tensorboard, digits) runs its whole suite in test_make_it_yours.py. This keeps the matrix within budget.
GENERATED_TEST_PAIRS = [
    ("csv", "folder"),
    ("mlflow", "mnist"),
    ("wandb", "diabetes"),
    ("tensorboard", "tokens"),
]


def test_generated_test_pairs_cover_every_logger_and_example():
    loggers, examples = zip(*GENERATED_TEST_PAIRS, ("tensorboard", "digits"), strict=True)
    assert set(loggers) == set(OPTIONS["logger"]) and set(examples) == set(OPTIONS["example"])


@pytest.mark.parametrize("pair", GENERATED_TEST_PAIRS, ids=["-".join(pair) for pair in GENERATED_TEST_PAIRS])
@pytest.mark.slow
def test_generated_whole_suite_passes(project, tmp_path, pair):
    root = Path(shutil.copytree(project(COMBINATIONS.index(CODE_VARIANTS[pair])), tmp_path / "project"))
    result = run(
        python("-m", "pytest", "-q", "-p", "no:cacheprovider"), cwd=root, timeout=WHOLE_SUITE_TIMEOUT
    )
    assert re.search(r"\d+ passed", result.stdout) and "failed" not in result.stdout
