#!/usr/bin/env bash
# All GPU figures of the throughput and ONNX issues in one command, on a CUDA machine:
#
#   bash scripts/gpu_benchmarks.sh [MODEL]      # MODEL: hub id / folder / file; default random SD 1.5
#   STAGES="packed per-pair" bash scripts/gpu_benchmarks.sh      # a subset, e.g. one per command
#
# Stages (default: all, in this order): unet (UNet image-steps/s per backend), cost (FLOP model,
# CPU), packed (hard negatives/s of every mode, one job per mode, torch eager), compile (GeNIe and
# GeNIe-Ada lite on torch / CUDA graphs / torch.compile / both, same run), onnx (the same on the
# ONNX backends, export included in warm-up), per-pair (one output per call: latency), families
# (GeNIe / GeNIe-Ada outputs/s of each family's reference checkpoint that is in the HF cache, at
# its recommended sampler: benchmarks/perf/family_throughput.py), tests.
# Each writes benchmarks/results/<what>_<gpu>_<date>.json (figures, ratios to torch eager
# measured in the same run, warm-up seconds, GPU name, versions); cost writes
# ada_cost_model_sd15.json.
# Uses the active Python if it already has diffusers + onnxruntime-gpu (e.g. a machine staged
# with device wheels, PYTHONPATH set); otherwise builds .venv-gpu with the `gpu` extra first.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
model=${1:-}
py=${PYTHON:-python3}
all="unet cost packed compile onnx per-pair families tests"
stages=" ${STAGES:-$all} "
for st in $stages; do
  [[ " $all " == *" $st "* ]] || { echo "unknown stage '$st' in STAGES; choose from: $all" >&2; exit 2; }
done
want() { [[ "$stages" == *" $1 "* ]]; }
if ! "$py" -c "import diffusers, onnxruntime, torch; assert torch.cuda.is_available()" 2>/dev/null; then
  bash scripts/setup.sh "$here/.venv-gpu" gpu,dev
  py="$here/.venv-gpu/bin/python"
fi
gpu=$("$py" -c "import torch, re; print(re.sub(r'[^a-z0-9]+', '-', torch.cuda.get_device_name().lower()).strip('-'))")
day=$(date -u +%F)
out=benchmarks/results
mkdir -p "$out"
margs=(--arch sd15); [ -n "$model" ] && margs=(--model "$model")
gt=benchmarks/perf/generation_throughput.py
if want unet; then
  echo "== UNet image-steps/s: torch eager, CUDA graphs, torch.compile (+ CUDA graphs), ONNX ($gpu)"
  "$py" benchmarks/perf/unet_throughput.py "${margs[@]}" --device cuda --batches 2,16,64 \
    --out "$out/unet_throughput_${gpu}_${day}.json"
fi
if want cost; then
  echo "== GeNIe-Ada's FLOPs per output / GeNIe's on SD 1.5 (computed: the compute-bound floor)"
  "$py" benchmarks/perf/ada_cost_model.py --out "$out/ada_cost_model_sd15.json"
fi
if want packed; then
  echo "== hard negatives/s, 512 px, 50 steps, CFG 7.5: GeNIe, GeNIe-Ada batched/naive/fast/lite, Text2Image"
  "$py" $gt "${margs[@]}" --device cuda --outputs 32 --max-batch auto --channels-last \
    --backends torch --out "$out/generation_throughput_${gpu}_${day}.json"
fi
if want compile; then
  echo "== GeNIe and GeNIe-Ada lite on torch eager, CUDA graphs, torch.compile (+ CUDA graphs), same run"
  "$py" $gt "${margs[@]}" --device cuda --outputs 32 --max-batch auto --channels-last \
    --modes genie,genie_ada_lite --backends torch,cuda-graphs,torch-compile,torch-compile-cuda-graphs \
    --out "$out/generation_throughput_compile_${gpu}_${day}.json"
fi
if want onnx; then
  echo "== GeNIe and GeNIe-Ada lite on torch eager and the ONNX backends, same run"
  "$py" $gt "${margs[@]}" --device cuda --outputs 32 --max-batch auto --channels-last \
    --modes genie,genie_ada_lite --backends torch,onnx,onnx-cuda-graphs \
    --out "$out/generation_throughput_onnx_${gpu}_${day}.json"
fi
if want per-pair; then
  echo "== one output per call (latency: GeNIe alone leaves the GPU idle)"
  "$py" $gt "${margs[@]}" --device cuda --outputs 16 --per-pair --channels-last \
    --modes genie,genie_ada_batched,genie_ada_lite,text2image \
    --backends torch,cuda-graphs,torch-compile-cuda-graphs \
    --out "$out/generation_throughput_per_pair_${gpu}_${day}.json"
fi
if want families; then
  echo "== GeNIe / GeNIe-Ada outputs/s per model family (reference checkpoints in the HF cache)"
  fam_models=(); [ -n "$model" ] && fam_models=(--model "$model")
  "$py" benchmarks/perf/family_throughput.py "${fam_models[@]}" --device cuda --outputs 16 \
    --out "$out/family_throughput_${gpu}_${day}.json" || echo "families: no model in the HF cache"
fi
if want tests; then
  echo "== gpu tests"
  "$py" -m pytest -q -m gpu tests
fi
echo "results in $out/: *_${gpu}_${day}.json, ada_cost_model_sd15.json"
