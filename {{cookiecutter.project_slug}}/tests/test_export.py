"""export.py turns a checkpoint into ONNX and TorchScript files that compute what PyTorch computes."""

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import PROJECT_ROOT, best_checkpoint, checkpointed_runs, load_checkpoint, make_datamodule

import {{ cookiecutter.package_name }}.infra.outputs.exporting as export

# Run in a fresh interpreter that imports neither this project nor Lightning: a consumer's view of the files.
CONSUMER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, onnxruntime, torch

    folder = sys.argv[1]
    contract = json.load(open(f"{folder}/model.json"))
    norm = contract["input"]["normalization"]
    pixels = np.load(f"{folder}/pixels.npy")  # raw images, as a camera or a file would give them
    mean, std = (np.array(norm[key], dtype=np.float32).reshape(-1, 1, 1) for key in ("mean", "std"))
    images = ((pixels / norm["scale"] - mean) / std).astype(np.float32)
    session = onnxruntime.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
    onnx_logits = session.run([contract["output"]["name"]], {contract["input"]["name"]: images})[0]
    script_logits = torch.jit.load(f"{folder}/model.pt")(torch.from_numpy(images)).detach().numpy()
    np.save(f"{folder}/onnx.npy", onnx_logits)
    np.save(f"{folder}/torchscript.npy", script_logits)
    """
)


@pytest.mark.slow
def test_export_both_formats_and_run_them_in_a_fresh_process(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)
    export.main(["--ckpt_path=best", f"--save_dir={trained_run}", f"--output_dir={tmp_path}"])
    printed = capsys.readouterr().out
    assert "onnx: " in printed and "torchscript: " in printed
    contract = json.loads((tmp_path / "model.json").read_text())
    best = best_checkpoint(checkpointed_runs(trained_run)[0])
    assert contract["checkpoint"] == str(best)  # best resolves as train.py resolves it
    datamodule = make_datamodule()
    assert contract["input"]["shape"] == ["batch", *datamodule.input_shape]
    norm = datamodule.normalization
    assert {key: contract["input"]["normalization"][key] for key in norm} == norm
    assert contract["class_names"] == list(datamodule.class_names)
    for fmt in ("onnx", "torchscript"):
        assert 0 <= contract["formats"][fmt]["max_abs_error"] <= contract["tolerance"]["atol"] == 1e-5

    # 13 images (a batch size the export never saw) of the project's own pipeline, turned back into raw
    # pixels: the consumer must get the network's input back from them with model.json's recipe alone.
    images = torch.cat([batch for batch, _ in datamodule.test_dataloader()])[:13]
    mean, std = (torch.tensor(norm[key]).reshape(-1, 1, 1) for key in ("mean", "std"))
    np.save(tmp_path / "pixels.npy", ((images * std + mean) * norm["scale"]).numpy())
    subprocess.run([sys.executable, "-c", CONSUMER, str(tmp_path)], check=True, timeout=120)
    net, _ = export.load_network(best)
    with torch.no_grad():
        expected = net(images)
    for fmt in ("onnx", "torchscript"):
        logits = torch.from_numpy(np.load(tmp_path / f"{fmt}.npy"))
        assert logits.shape == (len(images), len(datamodule.class_names))
        error = (logits - expected).abs().max().item()
        assert error <= 1e-5, f"{fmt}: max abs error {error}"


def test_export_without_onnx_installed_says_how_to_install(monkeypatch, tmp_path):
    # None in sys.modules makes `import onnxruntime` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SystemExit) as failure:
        export.main(["--ckpt_path=best", "--format=onnx", f"--output_dir={tmp_path}"])
    # sys.exit prints this one line to stderr and exits with status 1, before any checkpoint is looked for.
    assert str(failure.value) == (
        'error: --format onnx needs onnxruntime, an optional dependency: pip install -e ".[export]"'
    )
    assert not any(tmp_path.iterdir())


def test_export_fails_loudly_when_the_exported_model_differs(trained_run, tmp_path, monkeypatch):
    checkpoint = checkpointed_runs(trained_run)[0] / "checkpoints" / "last.ckpt"
    run_exported = export.run_exported
    monkeypatch.setattr(export, "run_exported", lambda *args: run_exported(*args) + 1e-3)
    with pytest.raises(SystemExit) as failure:
        export.main([f"--ckpt_path={checkpoint}", "--format=torchscript", f"--output_dir={tmp_path}"])
    assert "torchscript differs from PyTorch by up to 0.001 > atol 1e-05" in str(failure.value)
    assert not (tmp_path / "model.json").exists()


def test_a_failed_re_export_leaves_the_previous_export_whole(trained_run, tmp_path, monkeypatch):
    checkpoint = checkpointed_runs(trained_run)[0] / "checkpoints" / "last.ckpt"
    output_dir = tmp_path / "export"
    export.main([f"--ckpt_path={checkpoint}", "--format=torchscript", f"--output_dir={output_dir}"])
    previous = contents(output_dir)
    # Other weights, whose export fails its parity check: none of its files may replace the previous ones.
    retrained = load_checkpoint(checkpoint)
    retrained["state_dict"] = {key: 2 * value for key, value in retrained["state_dict"].items()}
    torch.save(retrained, retrained_path := tmp_path / "retrained.ckpt")
    run_exported = export.run_exported
    monkeypatch.setattr(export, "run_exported", lambda *args: run_exported(*args) + 1e-3)
    with pytest.raises(SystemExit, match="torchscript differs from PyTorch") as failure:
        export.main([f"--ckpt_path={retrained_path}", "--format=torchscript", f"--output_dir={output_dir}"])
    assert "\n" not in str(failure.value)
    assert contents(output_dir) == previous
    assert sorted(tmp_path.iterdir()) == [output_dir, retrained_path], "no temporary file is left behind"


def test_a_re_export_replaces_the_previous_one_whole(trained_run, tmp_path):
    run = checkpointed_runs(trained_run)[0]
    output_dir = tmp_path / "export"
    for checkpoint in (run / "checkpoints" / "last.ckpt", best_checkpoint(run)):
        export.main([f"--ckpt_path={checkpoint}", "--format=torchscript", f"--output_dir={output_dir}"])
    assert json.loads((output_dir / "model.json").read_text())["checkpoint"] == str(checkpoint)
    assert sorted(tmp_path.iterdir()) == [output_dir]
    (output_dir / "notes.txt").write_text("not an export's")
    with pytest.raises(SystemExit, match=f"--output_dir {output_dir}: holds more than an export"):
        export.main([f"--ckpt_path={checkpoint}", "--format=torchscript", f"--output_dir={output_dir}"])
    assert (output_dir / "notes.txt").is_file()


def contents(folder) -> dict[str, str]:
    """Each file of ``folder`` by name, as a SHA-256 of its bytes (a readable diff when a file changed)."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir()}


def test_export_of_a_missing_checkpoint_names_it(tmp_path):
    with pytest.raises(SystemExit, match="--ckpt_path nowhere.ckpt: no such file"):
        export.main(["--ckpt_path=nowhere.ckpt", "--format=torchscript", f"--output_dir={tmp_path}"])


def test_export_of_a_truncated_or_foreign_checkpoint_names_it(trained_run, tmp_path):
    checkpoint = checkpointed_runs(trained_run)[0] / "checkpoints" / "last.ckpt"
    out = f"--output_dir={tmp_path / 'out'}"
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:4096])
    with pytest.raises(SystemExit, match="truncated.ckpt: not a PyTorch checkpoint"):
        export.main([f"--ckpt_path={truncated}", "--format=torchscript", out])
    foreign = load_checkpoint(checkpoint)
    foreign["state_dict"] = {f"backbone.{k}": v for k, v in foreign["state_dict"].items()}
    torch.save(foreign, foreign_path := tmp_path / "foreign.ckpt")
    with pytest.raises(SystemExit, match="foreign.ckpt: its weights do not fit ImageClassifier"):
        export.main([f"--ckpt_path={foreign_path}", "--format=torchscript", out])
    assert not (tmp_path / "out").exists()
