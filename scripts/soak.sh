#!/usr/bin/env bash
# Long use of one engine on the default model (`wisp soak`): GENERATIONS generations (default
# 2000) of four kinds in turn, resident memory and GPU objects printed every EVERY (default 200),
# on the CPU and, when an adapter exists, on the GPU (GPU_GENERATIONS, default 400; 0 skips it:
# on lavapipe the default model decodes at ~1 token/s).
set -euo pipefail
cd "$(dirname "$0")/.."
wisp=target/release/wisp
model=$($wisp fetch | tail -1)
echo "== CPU"
$wisp soak --model "$model" --generations "${GENERATIONS:-2000}" --every "${EVERY:-200}" --backend cpu
if [ "${GPU_GENERATIONS:-400}" -gt 0 ] && $wisp soak --model "$model" --generations 1 --every 1 --backend gpu >/dev/null 2>&1; then
  echo "== GPU"
  $wisp soak --model "$model" --generations "${GPU_GENERATIONS:-400}" --every "${EVERY:-200}" --backend gpu
else
  echo "== GPU: skipped (GPU_GENERATIONS=0, or no adapter)"
fi
