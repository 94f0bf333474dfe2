#!/usr/bin/env bash
# wisp's GPU and CPU backends side by side in one run, on whatever adapter wgpu finds (here:
# Mesa lavapipe, a CPU Vulkan driver, so the GPU column measures kernels on the CPU; on a machine
# with a GPU it measures the GPU). Prints both JSON lines and the GPU/CPU ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/wisp
cpu=$("$bin" bench --backend cpu --json "$@" 2>/dev/null | tail -1)
gpu=$("$bin" bench --backend gpu --json "$@" 2>/dev/null | tail -1)
python3 - "$cpu" "$gpu" <<'PY'
import json, sys
cpu, gpu = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"| backend | prefill tok/s | decode tok/s | peak RSS MB | dispatches/token | adapter |")
print(f"|---|---|---|---|---|---|")
for name, r in (("cpu", cpu), ("gpu", gpu)):
    where = r.get("adapter") or f"{r.get('threads')} CPU threads"
    print(f"| {name} | {r['prefill_tok_s']:.2f} | {r['decode_tok_s']:.2f} | {r['peak_rss_mb']:.0f} | "
          f"{r.get('dispatches_per_token', '')} | {where} |")
print(f"gpu/cpu: prefill {gpu['prefill_tok_s'] / cpu['prefill_tok_s']:.3f}x, "
      f"decode {gpu['decode_tok_s'] / cpu['decode_tok_s']:.3f}x")
PY
