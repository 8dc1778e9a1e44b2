"""export.py turns a checkpoint into ONNX and TorchScript files that compute what PyTorch computes."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PROJECT_ROOT, load_checkpoint

import {{ cookiecutter.package_name }}.export as export
from {{ cookiecutter.package_name }}.data.dataset import PIXEL_MAX, DigitsDataModule, load_digit_tensors


def run_export(*args: str) -> subprocess.CompletedProcess:
    """Run ``python export.py <args>`` the way a user does; it must succeed."""
    command = [sys.executable, str(PROJECT_ROOT / "export.py"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


# Run in a fresh interpreter that imports neither this project nor Lightning: a consumer's view of the files.
CONSUMER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, onnxruntime, torch
    from sklearn.datasets import load_digits

    folder = sys.argv[1]
    contract = json.load(open(f"{folder}/model.json"))
    norm = contract["input"]["normalization"]
    pixels = load_digits().images[:13].astype(np.float32)[:, None]  # 13 raw images, batch size not exported
    images = (pixels / norm["scale"] - norm["mean"]) / norm["std"]
    session = onnxruntime.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
    onnx_logits = session.run([contract["output"]["name"]], {contract["input"]["name"]: images})[0]
    script_logits = torch.jit.load(f"{folder}/model.pt")(torch.from_numpy(images)).detach().numpy()
    np.save(f"{folder}/onnx.npy", onnx_logits)
    np.save(f"{folder}/torchscript.npy", script_logits)
    """
)


@pytest.mark.slow
def test_export_both_formats_and_run_them_in_a_fresh_process(trained_run, tmp_path):
    result = run_export("--ckpt_path=best", f"--save_dir={trained_run}", f"--output_dir={tmp_path}")
    assert "onnx: " in result.stdout and "torchscript: " in result.stdout
    contract = json.loads((tmp_path / "model.json").read_text())
    last = load_checkpoint(trained_run / "digits" / "version_0" / "checkpoints" / "last.ckpt")
    # The ModelCheckpoint that monitors a metric is the one with a best score.
    best = next(s["best_model_path"] for s in last["callbacks"].values() if s.get("best_model_score"))
    assert contract["checkpoint"] == best  # best resolves as train.py resolves it
    assert contract["input"]["shape"] == ["batch", 1, 8, 8]
    assert contract["input"]["normalization"]["scale"] == PIXEL_MAX
    assert contract["class_names"] == list(DigitsDataModule.class_names)
    for fmt in ("onnx", "torchscript"):
        assert 0 <= contract["formats"][fmt]["max_abs_error"] <= contract["tolerance"]["atol"] == 1e-5

    subprocess.run([sys.executable, "-c", CONSUMER, str(tmp_path)], check=True, timeout=120)
    net, _ = export.load_network(Path(best))
    images, _ = load_digit_tensors()  # the project's own input pipeline, against model.json's recipe
    with torch.no_grad():
        expected = net(images[:13])
    for fmt in ("onnx", "torchscript"):
        logits = torch.from_numpy(np.load(tmp_path / f"{fmt}.npy"))
        assert logits.shape == (13, 10)
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
    checkpoint = trained_run / "digits" / "version_0" / "checkpoints" / "last.ckpt"
    run_exported = export.run_exported
    monkeypatch.setattr(export, "run_exported", lambda *args: run_exported(*args) + 1e-3)
    with pytest.raises(SystemExit) as failure:
        export.main([f"--ckpt_path={checkpoint}", "--format=torchscript", f"--output_dir={tmp_path}"])
    assert "torchscript differs from PyTorch by up to 0.001 > atol 1e-05" in str(failure.value)
    assert not (tmp_path / "model.json").exists()


def test_export_of_a_missing_checkpoint_names_it(tmp_path):
    with pytest.raises(SystemExit, match="--ckpt_path nowhere.ckpt: no such file"):
        export.main(["--ckpt_path=nowhere.ckpt", "--format=torchscript", f"--output_dir={tmp_path}"])


def test_export_of_a_truncated_or_foreign_checkpoint_names_it(trained_run, tmp_path):
    checkpoint = trained_run / "digits" / "version_0" / "checkpoints" / "last.ckpt"
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
