#!/usr/bin/env bash
# Train the embedded model's VAE and UNet on one GPU (the shipped classifiers are reused), then
# judge it with the oracle. Step counts are planned from the time budget on the GPU at hand.
#   scripts/train_embedded_gpu.sh OUT_DIR [VAE_MINUTES] [UNET_MINUTES]        # phase 1, from scratch
#   INIT=1 UNET_BATCH=1024 scripts/train_embedded_gpu.sh OUT_DIR 0 UNET_MINUTES  # phase 2: continue
# Phase 2 warm-starts from genie_plugin/embedded/weights (its VAE is kept). New weights are written
# into genie_plugin/embedded/weights; the log, plans, quality JSON and a tarball go to OUT_DIR.
set -euo pipefail
out=${1:?OUT_DIR}; vae_min=${2:-1.2}; unet_min=${3:-4.5}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
w=genie_plugin/embedded/weights
work=${WORK_DIR:-/tmp/embedded-gpu-work}
init=(); [ "${INIT:-0}" = 1 ] && init=(--init-from "$w")
python3 -m genie_plugin.embedded.train --device cuda --work-dir "$work" --out-dir "$w" \
  --skip-classifiers-from "$w" "${init[@]}" --gen-images-per-class 800 \
  --vae-steps 0 --vae-minutes "$vae_min" --vae-batch 256 \
  --unet-steps 0 --unet-max-minutes "$unet_min" --unet-batch "${UNET_BATCH:-256}" \
  --unet-lr "${UNET_LR:-4e-4}" --ema-decay 0.9995 2>&1 | grep -v "━" || true
cp "$work"/log.jsonl "$work"/*_plan.json "$out"/
tar czf - "$w"/model "$w"/train_config.json | split -b 15m - "$out/weights.tgz."
for cfg in ${CFGS:-7.5 3}; do
  timeout 150 python3 benchmarks/embedded_quality.py --device cuda --no-card \
    --guidance "$cfg" --out "$out/quality_cfg$cfg.json" 2>&1 | grep -v "━" | tail -3 || true
done
