#!/usr/bin/env python3
"""`wisp bench` beside llama.cpp (llama-cpp-python) at equal threads, in one run: the same GGUF,
the same 128-token prompt (benches/bench_prompt.txt, no BOS), 128 greedy tokens with
end-of-generation ignored. Prints both (wisp with its exact and its llama.cpp\nnumerics) and the ratios as a Markdown table.

Run: pip install llama-cpp-python==0.3.36 numpy; python3 scripts/bench_vs_llamacpp.py [MODEL]
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent
WISP = ROOT / "target/release/wisp"
model = sys.argv[1] if len(sys.argv) > 1 else subprocess.check_output([str(WISP), "fetch"], text=True).strip()
prompt = (ROOT / "benches/bench_prompt.txt").read_text()


def llama(threads):
    m = Llama(model_path=model, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    ids = m.tokenize(prompt.encode(), add_bos=False)[:128]
    m.eval(ids[:16]); m.reset()  # warm-up
    t0 = time.perf_counter(); m.eval(ids); t1 = time.perf_counter()
    tok = int(np.argmax(m.scores[m.n_tokens - 1]))
    for _ in range(127):
        m.eval([tok]); tok = int(np.argmax(m.scores[m.n_tokens - 1]))
    t2 = time.perf_counter()
    return {"prefill_tok_s": len(ids) / (t1 - t0), "decode_tok_s": 127 / (t2 - t1)}


def wisp(threads, numerics):
    out = subprocess.check_output([str(WISP), "bench", "--model", model, "--backend", "cpu", "--threads", str(threads), "--json",
                                   "--numerics", numerics], text=True, stderr=subprocess.DEVNULL)
    return json.loads(out)


print("| threads | wisp numerics | wisp prefill | llama.cpp prefill | ratio | wisp decode | llama.cpp decode | ratio "
      "| wisp peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|")
for t in (1, 2):
    l = llama(t)
    for numerics in ("exact", "llamacpp"):
        w = wisp(t, numerics)
        print(f"| {t} | {numerics} | {w['prefill_tok_s']:.1f} | {l['prefill_tok_s']:.1f} "
              f"| {w['prefill_tok_s'] / l['prefill_tok_s']:.2f} | {w['decode_tok_s']:.1f} | {l['decode_tok_s']:.1f} "
              f"| {w['decode_tok_s'] / l['decode_tok_s']:.2f} | {w['peak_rss_mb']:.0f} |", flush=True)
