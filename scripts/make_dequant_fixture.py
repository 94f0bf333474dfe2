#!/usr/bin/env python3
"""Writes tests/fixtures/dequant.json: for every tensor type the engine reads, seeded random blocks
and what PyPI `gguf`'s `dequantize` makes of them (as f32 bit patterns, so the test compares
exactly). f16 fields inside blocks are set to finite values so no NaN/inf appears. Every other
byte is random, which is a valid block of every type here (gguf's quantize covers few of them),
so each quant, scale and bit-plane takes arbitrary values. Types added later come after the first
eight so that their cases stay as they were.

Run: pip install gguf numpy; python3 scripts/make_dequant_fixture.py
"""
import json
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parent.parent
rng = np.random.default_rng(20261123)


def finite_f16(n):
    return rng.uniform(-2.0, 2.0, n).astype(np.float16).view(np.uint8)


def blocks(t, n_blocks):
    block, size = GGML_QUANT_SIZES[t]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    # byte offsets of the f16 fields in each block layout
    halves = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q8_0: [0], T.Q4_K: [0, 2], T.Q6_K: [208],
              T.Q5_0: [0], T.Q5_1: [0, 2], T.IQ4_NL: [0], T.Q2_K: [80, 82], T.Q3_K: [108], T.Q5_K: [0, 2]}
    for off in halves.get(t, []):
        raw[:, off:off + 2] = finite_f16(n_blocks).reshape(n_blocks, 2)
    if t == T.F16:
        raw = finite_f16(n_blocks).reshape(n_blocks, 2)
    if t == T.BF16:
        raw = (rng.uniform(-3, 3, n_blocks).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(n_blocks, 2)
    if t == T.F32:
        raw = rng.uniform(-3, 3, n_blocks).astype(np.float32).view(np.uint8).reshape(n_blocks, 4)
    return raw.reshape(-1), block


cases = []
for t, n in [(T.F32, 37), (T.F16, 37), (T.BF16, 37), (T.Q8_0, 5), (T.Q4_0, 5), (T.Q4_1, 5), (T.Q4_K, 3), (T.Q6_K, 3),
             (T.Q5_0, 5), (T.Q5_1, 5), (T.IQ4_NL, 5), (T.Q2_K, 3), (T.Q3_K, 3), (T.Q5_K, 3)]:
    raw, block = blocks(t, n)
    values = dequantize(raw, t).astype(np.float32).reshape(-1)
    assert values.size == n * block and np.isfinite(values).all()
    cases.append({"type": t.name, "type_id": int(t), "bytes": raw.tobytes().hex(),
                  "f32_bits": [int(v) for v in values.view(np.uint32)]})
out = ROOT / "tests/fixtures/dequant.json"
out.write_text(json.dumps({"generator": "scripts/make_dequant_fixture.py", "cases": cases}) + "\n")
print(f"wrote {out} ({out.stat().st_size} bytes)")
