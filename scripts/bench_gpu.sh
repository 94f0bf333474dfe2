#!/usr/bin/env bash
# Native GPU speed where the model files cannot go (issue 3's H100 benchmark): writes random-weight
# GGUF models of the default model's shapes and types (SmolLM2-135M, Q4_1 + Q8_0) and of GPT-2
# medium in f16 with `wisp synth`, runs `wisp bench --backend gpu` on each, and prints a table for
# BENCHMARKS.md with decode's weight traffic as a share of the GPU's memory bandwidth.
#
# usage: scripts/bench_gpu.sh [--peak-gbs GB/S] [--layers N] [--presets "a b"] [bench options...]
#   --peak-gbs   the GPU's memory bandwidth; by default looked up from nvidia-smi's GPU name
#   --layers     fewer layers than the real models (a quick check of this script)
#   WISP_BIN     the wisp binary (default target/release/wisp, built if missing and cargo exists)
# On a machine without Rust: `strip -o DIR/wisp target/release/wisp` here, carry DIR, and run with
# WISP_BIN=DIR/wisp (the binary needs glibc >= 2.36 and a Vulkan loader, libvulkan.so.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${WISP_BIN:-target/release/wisp}
peak="" layers=() presets="smollm2-135m gpt2-medium-f16" bench=()
while [ $# -gt 0 ]; do
  case "$1" in
    --peak-gbs) peak=$2; shift 2 ;;
    --layers) layers=(--layers "$2"); shift 2 ;;
    --presets) presets=$2; shift 2 ;;
    *) bench+=("$1"); shift ;;
  esac
done
if [ ! -x "$bin" ]; then
  command -v cargo >/dev/null || { echo "bench_gpu: no $bin and no cargo to build it" >&2; exit 1; }
  cargo build --release --locked
fi
if [ -z "$peak" ] && command -v nvidia-smi >/dev/null; then
  name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
  # published memory bandwidths (GB/s) of the GPUs this is likely to meet
  case "$name" in
    *H200*) peak=4800 ;;
    *"H100 NVL"*) peak=3900 ;;
    *H100*HBM3*|*"H100 SXM"*) peak=3350 ;;
    *H100*PCIe*) peak=2000 ;;
    *A100*80GB*) peak=2039 ;;
    *A100*) peak=1555 ;;
    *L40S*|*L40*) peak=864 ;;
    *"RTX 4090"*) peak=1008 ;;
    *L4*) peak=300 ;;
  esac
  [ -n "$peak" ] && echo "bench_gpu: $name, taking its memory bandwidth as $peak GB/s" >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for p in $presets; do
  "$bin" synth --preset "$p" "${layers[@]}" --out "$work/$p.gguf"
  "$bin" bench --backend gpu --json --model "$work/$p.gguf" ${peak:+--peak-gbs "$peak"} "${bench[@]}" \
    | tail -1 >"$work/$p.json"
  rm "$work/$p.gguf"
  cat "$work/$p.json"
done
python3 - "$work" $presets <<'PY'
import json, sys
work, presets = sys.argv[1], sys.argv[2:]
print("| model (random weights) | prefill tok/s | decode tok/s | dispatches/token | weights MB/token | decode GB/s | % of bandwidth | adapter |")
print("|---|---|---|---|---|---|---|---|")
for p in presets:
    r = json.load(open(f"{work}/{p}.json"))
    pct = r.get("decode_bandwidth_pct")
    print(f"| {p} | {r['prefill_tok_s']:.1f} | {r['decode_tok_s']:.1f} | {r['dispatches_per_token']} | "
          f"{r['gpu_bytes_read_per_token'] / 1e6:.1f} | {r['decode_weight_gbs']:.1f} | "
          f"{'' if pct is None else f'{pct:.1f}'} | {r['adapter']} |")
PY
