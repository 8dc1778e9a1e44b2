#!/usr/bin/env bash
# On a machine with a CUDA GPU: a short bf16-mixed (16-mixed on older GPUs) fit on one GPU through
# train.py, checked for accuracy, with the training throughput in samples/s printed at the end.
# Without CUDA the test reports itself as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m pytest tests/test_gpu.py -m gpu -s -q -rs "$@"
