"""The baseline: the training a careful engineer writes by hand in plain PyTorch.

Same data split, network, optimizer, schedule, batch size and epochs as the generated project's default
config; a validation pass, TensorBoard scalars and a checkpoint every epoch. Prints one JSON line with the
final validation accuracy and the wall time of each epoch.

    python handwritten_loop.py --project <generated project folder> --epochs 20 --out <folder>
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", type=Path, required=True, help="generated project whose data/model to use"
    )
    parser.add_argument("--package", default="digits_classifier")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (CUDA)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    sys.path.insert(0, str(args.project))
    dataset = __import__(f"{args.package}.data.digits", fromlist=["DigitsDataModule"])
    network = __import__(f"{args.package}.models.mlp", fromlist=["MLP"])
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    datamodule = dataset.DigitsDataModule(batch_size=args.batch_size)
    datamodule.setup("fit")
    train, val = datamodule.splits["train"], datamodule.splits["val"]
    train_x, train_y = train.inputs.to(device), train.targets.to(device)
    val_x, val_y = val.inputs.to(device), val.targets.to(device)

    given = datamodule.model_args()
    model = network.MLP(given["input_shape"], len(given["class_names"]), (128, 64), 0.1).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    writer = SummaryWriter(str(args.out))
    checkpoints = args.out / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    best_loss, step, epoch_times, val_acc = float("inf"), 0, [], 0.0
    for epoch in range(args.epochs):
        started = time.perf_counter()
        model.train()
        for batch in torch.randperm(len(train_y), device=device).split(args.batch_size):
            with autocast:
                loss = F.cross_entropy(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 10 == 0:
                writer.add_scalar("train/loss", loss.item(), step)
        scheduler.step()

        model.eval()
        with torch.no_grad(), autocast:
            logits = torch.cat([model(x) for x in val_x.split(args.batch_size)]).float()
        val_loss = F.cross_entropy(logits, val_y).item()
        val_acc = (logits.argmax(dim=1) == val_y).float().mean().item()
        writer.add_scalar("val/loss", val_loss, step)
        writer.add_scalar("val/acc", val_acc, step)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}
        torch.save(state, checkpoints / "last.pt")
        if val_loss < best_loss:
            best_loss = val_loss
            torch.save(state, checkpoints / "best.pt")
        epoch_times.append(time.perf_counter() - started)
    writer.close()
    print(json.dumps({"val_acc": val_acc, "epoch_times": epoch_times, "train_samples": len(train_y)}))


if __name__ == "__main__":
    main()
