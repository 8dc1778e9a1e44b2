"""On a CUDA machine: one GPU, mixed precision, through train.py. Run with ``scripts/gpu_check.sh``."""

from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def samples_per_second(run_dir: Path, batch_size: int) -> float:
    """Training throughput from the wall-clock times TensorBoard records with each logged step."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    events = accumulator.Scalars("train/loss")
    first, last = events[len(events) // 10], events[-1]  # skip the first steps: CUDA warm-up
    return (last.step - first.step) * batch_size / (last.wall_time - first.wall_time)


def test_one_gpu_mixed_precision_fit(tmp_path):
    batch_size = 256
    run_train(
        "fit",
        "--config=configs/profiles/gpu.yaml",
        "--trainer.max_epochs=20",
        "--trainer.log_every_n_steps=1",
        f"--data.batch_size={batch_size}",
        log_dir=tmp_path,
    )
    (run_dir,) = (tmp_path / "digits").glob("version_*")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    expected = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    assert config["trainer"]["precision"] == expected
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    assert accumulator.Scalars("val/acc")[-1].value >= 0.9
    speed = samples_per_second(run_dir, batch_size)
    print(
        f"\n{torch.cuda.get_device_name()}: {expected}, {speed:,.0f} training samples/s (batch {batch_size})"
    )
