#!/usr/bin/env bash
# Train the shipped `base` student on a GPU machine (docs/TRAINING.md has the numbers).
# Needs, in the repo root: .carry/pool (python -m pocketvec.train.pool POOL.csv SET=N ... --compact .carry/pool)
# and .whl (wheels of the packages the machine lacks). Writes $OUT/base (ship_base) and the run's config.
set -eo pipefail
OUT=${OUT:-/tmp/gpu-base-out}
LIMIT=${LIMIT:-540}  # seconds: stop there and write the run as it is (the preset's 40 epochs take ~8 min)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, timm, albumentations, os; print(torch.__version__, timm.__version__, albumentations.__version__, torch.cuda.is_available(), os.cpu_count())"
python3 -m pocketvec train --preset base-gpu --data .carry/pool/manifest.csv --out /tmp/gpu-run \
  --time-limit "$LIMIT" 2>&1 | tail -3
python3 -c "from pocketvec.train.student import ship_base; ship_base('/tmp/gpu-run', '$OUT/base')"
cp /tmp/gpu-run/config.json "$OUT/run_config.json"
ls -la "$OUT/base"
