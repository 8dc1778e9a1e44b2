"""export.py turns a checkpoint into ONNX and torch.export files that compute what PyTorch computes."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import (
    PROJECT_ROOT,
    TEST_ARGS,
    best_checkpoint,
    checkpointed_runs,
    load_checkpoint,
    load_module,
    make_datamodule,
)

import {{ cookiecutter.package_name }}.infra.outputs.exporting as export
from {{ cookiecutter.package_name }}.infra.command.code_version import code_version
from {{ cookiecutter.package_name }}.infra.command.linking import data_args
from {{ cookiecutter.package_name }}.infra.outputs.export_inputs import example_inputs, flatten_outputs

# Run in a fresh interpreter that imports neither this project nor Lightning: a consumer's view of the files.
CONSUMER = textwrap.dedent(
    """
    import json, sys
    import onnxruntime, torch

    folder = sys.argv[1]
    contract = json.load(open(f"{folder}/model.json"))
    inputs = torch.load(f"{folder}/inputs.pt")
    names = [entry["name"] for entry in contract["inputs"]]
    session = onnxruntime.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
    onnx = session.run(None, {name: value.numpy() for name, value in zip(names, inputs)})
    program = torch.export.load(f"{folder}/model.pt2").module()(*inputs)
    program = list(program.values()) if isinstance(program, dict) else program
    program = [program] if isinstance(program, torch.Tensor) else list(program)
    onnx = [torch.from_numpy(output) for output in onnx]
    torch.save({"onnx": onnx, "pt2": program}, f"{folder}/outputs.pt")
    """
)


@pytest.fixture(scope="module")
def run(trained_run):
    (run,) = checkpointed_runs(trained_run)
    return run


@pytest.mark.slow
def test_both_formats_run_in_a_fresh_process_and_match_pytorch(
    trained_run, run, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(PROJECT_ROOT)
    export.main(["--ckpt_path=best", f"--save_dir={trained_run}", f"--output_dir={tmp_path}", *TEST_ARGS])
    printed = capsys.readouterr().out
    assert "onnx: " in printed and "pt2: " in printed
    contract = json.loads((tmp_path / "model.json").read_text())
    best = best_checkpoint(run)
    assert contract["checkpoint"] == str(best)  # best resolves as train.py resolves it
    assert contract["checkpoint_sha256"] == hashlib.sha256(best.read_bytes()).hexdigest()
    assert contract["epoch"] == load_checkpoint(best)["epoch"]
    # Traceable to its code: the run, attempt and commit that trained it, and the code that exported it.
    assert contract["provenance"] == load_checkpoint(best)["record"]["provenance"]
    assert contract["provenance"]["run"] == str(run.resolve())
    exporting_code = code_version()
    assert contract["exported_with"] == {
        key: getattr(exporting_code, key) for key in ("commit", "branch", "dirty", "why")
    }
    assert contract["data_args"] == data_args(make_datamodule())
    for fmt in ("onnx", "pt2"):
        assert contract["formats"][fmt]["max_abs_error"] >= 0

    # Real samples (not the ones exported with: the first 13, or all there are), in a batch size the export
    # never saw, through the files alone.
    module = load_module(best)
    datamodule = make_datamodule()
    inputs = example_inputs(module, datamodule)
    batches = [inputs] + [tuple(value[:1] for value in inputs)]
    for batch in batches:
        for entry, value in zip(contract["inputs"], batch, strict=True):
            assert entry["dtype"] == str(value.dtype).removeprefix("torch.")
            assert entry["shape"] == ["batch", *value.shape[1:]]
        torch.save(batch, tmp_path / "inputs.pt")
        subprocess.run([sys.executable, "-c", CONSUMER, str(tmp_path)], check=True, timeout=1200)
        outputs = torch.load(tmp_path / "outputs.pt")
        with torch.no_grad():
            expected = flatten_outputs(module(*batch))
        for fmt in ("onnx", "pt2"):
            for got, want in zip(outputs[fmt], expected, strict=True):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_export_without_onnx_installed_says_how_to_install(monkeypatch, tmp_path):
    # None in sys.modules makes `import onnxruntime` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SystemExit) as failure:
        export.main(["--ckpt_path=best", "--format=onnx", f"--output_dir={tmp_path}", *TEST_ARGS])
    # sys.exit prints this one line to stderr and exits with status 1, before any checkpoint is looked for.
    assert str(failure.value) == (
        'error: --format onnx needs onnxruntime, an optional dependency: pip install -e ".[export]"'
    )
    assert not any(tmp_path.iterdir())


def test_a_difference_beyond_the_tolerance_fails_and_names_the_options(run, tmp_path, monkeypatch):
    checkpoint = run / "checkpoints" / "last.ckpt"
    run_exported = export.run_exported

    def off_by_a_thousandth(*args):
        return [out + 1e-3 * (1 + out.abs().max()) for out in run_exported(*args)]

    monkeypatch.setattr(export, "run_exported", off_by_a_thousandth)
    with pytest.raises(SystemExit) as failure:
        export.main([f"--ckpt_path={checkpoint}", "--format=pt2", f"--output_dir={tmp_path}", *TEST_ARGS])
    assert re.search(r"pt2 differs from PyTorch by up to [\d.e-]+ > [\d.e-]+ \(--atol", str(failure.value))
    assert "--atol" in str(failure.value) and "--rtol" in str(failure.value)
    assert not (tmp_path / "model.json").exists()
    # The tolerance grows with the outputs: a relative difference of 1e-7 passes whatever their size.
    monkeypatch.setattr(
        export, "run_exported", lambda *args: [out * (1 + 1e-7) for out in run_exported(*args)]
    )
    export.main([f"--ckpt_path={checkpoint}", "--format=pt2", f"--output_dir={tmp_path}", *TEST_ARGS])


def test_a_failed_re_export_leaves_the_previous_export_whole(run, tmp_path, monkeypatch):
    checkpoint = run / "checkpoints" / "last.ckpt"
    output_dir = tmp_path / "export"
    export.main([f"--ckpt_path={checkpoint}", "--format=pt2", f"--output_dir={output_dir}", *TEST_ARGS])
    previous = contents(output_dir)
    # Other weights, whose export fails its parity check: none of its files may replace the previous ones.
    retrained = load_checkpoint(checkpoint)
    retrained["state_dict"] = {key: 2 * value for key, value in retrained["state_dict"].items()}
    torch.save(retrained, retrained_path := tmp_path / "retrained.ckpt")
    run_exported = export.run_exported
    monkeypatch.setattr(export, "run_exported", lambda *args: [out + 1 for out in run_exported(*args)])
    with pytest.raises(SystemExit, match="pt2 differs from PyTorch") as failure:
        options = [f"--ckpt_path={retrained_path}", "--format=pt2", f"--output_dir={output_dir}"]
        export.main([*options, *TEST_ARGS])
    assert "\n" not in str(failure.value)
    assert contents(output_dir) == previous
    assert sorted(tmp_path.iterdir()) == [output_dir, retrained_path], "no temporary file is left behind"


def test_a_re_export_keeps_the_other_format_of_the_same_checkpoint_only(run, tmp_path):
    last, best = run / "checkpoints" / "last.ckpt", best_checkpoint(run)
    output_dir = tmp_path / "export"
    for fmt in ("onnx", "pt2"):
        export.main([f"--ckpt_path={last}", f"--format={fmt}", f"--output_dir={output_dir}", *TEST_ARGS])
    assert set(json.loads((output_dir / "model.json").read_text())["formats"]) == {"onnx", "pt2"}
    assert {path.name for path in output_dir.iterdir()} == {"model.onnx", "model.pt2", "model.json"}
    if last.read_bytes() != best.read_bytes():  # another checkpoint: the folder holds its files alone
        export.main([f"--ckpt_path={best}", "--format=pt2", f"--output_dir={output_dir}", *TEST_ARGS])
        assert json.loads((output_dir / "model.json").read_text())["checkpoint"] == str(best)
        assert {path.name for path in output_dir.iterdir()} == {"model.pt2", "model.json"}
    assert sorted(tmp_path.iterdir()) == [output_dir]
    (output_dir / "notes.txt").write_text("not an export's")
    with pytest.raises(SystemExit, match=f"--output_dir {output_dir}: holds more than an export"):
        export.main([f"--ckpt_path={best}", "--format=pt2", f"--output_dir={output_dir}", *TEST_ARGS])
    assert (output_dir / "notes.txt").is_file()


def contents(folder) -> dict[str, str]:
    """Each file of ``folder`` by name, as a SHA-256 of its bytes (a readable diff when a file changed)."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir()}


def test_export_of_a_missing_checkpoint_names_it(tmp_path):
    with pytest.raises(SystemExit, match="--ckpt_path nowhere.ckpt: no such file"):
        export.main(["--ckpt_path=nowhere.ckpt", "--format=pt2", f"--output_dir={tmp_path}", *TEST_ARGS])


def test_export_of_a_truncated_or_foreign_checkpoint_names_it(run, tmp_path):
    checkpoint = run / "checkpoints" / "last.ckpt"
    out = f"--output_dir={tmp_path / 'out'}"
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:4096])
    with pytest.raises(SystemExit, match="truncated.ckpt: not a PyTorch checkpoint"):
        export.main([f"--ckpt_path={truncated}", "--format=pt2", out, *TEST_ARGS])
    foreign = load_checkpoint(checkpoint)
    foreign["state_dict"] = {f"backbone.{k}": v for k, v in foreign["state_dict"].items()}
    torch.save(foreign, foreign_path := tmp_path / "foreign.ckpt")
    with pytest.raises(SystemExit, match="foreign.ckpt: its weights do not fit"):
        export.main([f"--ckpt_path={foreign_path}", "--format=pt2", out, *TEST_ARGS])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_mid_export_writes_nothing_and_says_so(run, tmp_path, monkeypatch, capsys, name):
    checkpoint = run / "checkpoints" / "last.ckpt"
    output_dir = tmp_path / "export"
    export.main([f"--ckpt_path={checkpoint}", "--format=pt2", f"--output_dir={output_dir}", *TEST_ARGS])
    previous = contents(output_dir)
    export_pt2 = export.export_pt2

    def stopped_while_exporting(*args):
        os.kill(os.getpid(), signal.Signals[name])
        return export_pt2(*args)

    monkeypatch.setitem(export.EXPORTERS, "pt2", stopped_while_exporting)
    with pytest.raises(SystemExit) as stopped:
        export.main([f"--ckpt_path={checkpoint}", "--format=pt2", f"--output_dir={output_dir}", *TEST_ARGS])
    assert stopped.value.code == 128 + signal.Signals[name]
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said == f"stopped by {name}: nothing was written; run the same command again"
    assert contents(output_dir) == previous
    assert sorted(tmp_path.iterdir()) == [output_dir], "no temporary folder is left behind"
