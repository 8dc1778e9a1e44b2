"""On a CUDA machine: one GPU, mixed precision, through train.py. Run with ``scripts/gpu_check.sh``."""

import json

import probes
import pytest
import torch
import yaml
from conftest import MONITOR, PROBES_ENV, better, checkpointed_runs, run_train
from metrics import read_scalars

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_one_gpu_mixed_precision_fit(tmp_path):
    batch_size = 256
    speed_file = tmp_path / "speed.json"
    run_train(
        "fit",
        "--config=configs/profiles/gpu.yaml",
        "--trainer.max_epochs=20",
        f"--data.init_args.batch_size={batch_size}",
        *probes.option("Throughput", path=speed_file),
        log_dir=tmp_path / "logs",
        env=PROBES_ENV,
    )
    (run_dir,) = checkpointed_runs(tmp_path / "logs")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    expected = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    assert config["trainer"]["precision"] == expected
    monitored = [value for _, value in read_scalars(run_dir)[MONITOR]]
    assert any(better(value, monitored[0]) for value in monitored[1:]), monitored
    speed = json.loads(speed_file.read_text())["samples_per_second"]
    assert speed > 0
    print(
        f"\n{torch.cuda.get_device_name()}: {expected}, {speed:,.0f} training samples/s (batch {batch_size})"
    )
