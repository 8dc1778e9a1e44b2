#!/usr/bin/env bash
# Multi-node training without SLURM: run this once on every machine, with the same MASTER_ADDR.
#
#   # on the first machine (it hosts the rendezvous):
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 scripts/torchrun_multinode.sh
#   # on the second machine:
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 scripts/torchrun_multinode.sh
#
# Extra arguments go to train.py, e.g. `--ckpt_path last` to resume or `--trainer.max_epochs 50`.
# GPUS_PER_NODE defaults to the number of visible GPUs; MASTER_PORT to 29500 (must be open between nodes).
set -euo pipefail
cd "$(dirname "$0")/.."

NNODES="${NNODES:?set NNODES, the number of machines}"
NODE_RANK="${NODE_RANK:?set NODE_RANK: 0 on the first machine, 1 .. NNODES-1 on the others}"
MASTER_ADDR="${MASTER_ADDR:?set MASTER_ADDR, the address of the NODE_RANK=0 machine}"
MASTER_PORT="${MASTER_PORT:-29500}"
GPUS_PER_NODE="${GPUS_PER_NODE:-$(python -c 'import torch; print(torch.cuda.device_count())')}"

# torchrun starts GPUS_PER_NODE processes here and sets RANK, LOCAL_RANK and WORLD_SIZE for each;
# Lightning reads them, and --trainer.num_nodes / --trainer.devices must agree with them.
exec torchrun \
    --nnodes "$NNODES" \
    --node_rank "$NODE_RANK" \
    --nproc_per_node "$GPUS_PER_NODE" \
    --master_addr "$MASTER_ADDR" \
    --master_port "$MASTER_PORT" \
    train.py fit \
    --config configs/profiles/multinode.yaml \
    --trainer.num_nodes "$NNODES" \
    --trainer.devices "$GPUS_PER_NODE" \
    "$@"
