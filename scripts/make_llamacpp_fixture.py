#!/usr/bin/env python3
"""Writes tests/fixtures/llamacpp_smollm2.json: what llama.cpp (through llama-cpp-python) says
about the default model, for the golden tests in tests/golden_llamacpp.rs.

- tokenizer: ids for awkward texts (Unicode, emoji, runs of spaces and newlines, digits, code,
  special tokens written in the text), tokenized with special=True, add_bos per the GGUF (false).
- greedy: for one chat prompt and two plain prompts, 64 greedy steps (end-of-generation ignored);
  per step the chosen id, the top-two logit margin, and llama.cpp's logits at its top 32 ids.
- perplexity: on tests/fixtures/declaration.txt at ctx 512, non-overlapping windows from an empty
  cache, scoring every predicted token and (llama-perplexity's convention) the second half only.
- perplexity_long: the same at ctx 2048 on tests/fixtures/essay.txt (over 4,000 tokens, so
  positions far beyond 512 are scored), with each window's own perplexity too.

Run: CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
     -DGGML_BMI2=ON -DGGML_AVX512=OFF" pip install llama-cpp-python==0.3.36 numpy
     python3 scripts/make_llamacpp_fixture.py MODEL.gguf
Build llama.cpp for AVX2 (x86-64-v3), not natively: on a machine with AVX-512 a native build sums
its int8 dots in another order, and on this 135M Q4_1 model that moves logits by up to 0.7 and
the chat prompt's greedy ids from step 7 on. Built as above, the script reproduces this fixture
exactly (ids and logits; perplexities to ~1e-14, numpy's summation).
"""
import json
import sys
from pathlib import Path

import numpy as np
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent
STEPS = 64
TOPN = 32
PPL_CTX = 512
LONG_CTX = 2048

TOKENIZER_TEXTS = [
    "Hello world",
    "  leading spaces and   runs   of    spaces  ",
    "line one\nline two\n\n\nthree newlines\r\nwindows line",
    "Digits 1234567890 and 3.14159 and 1,000,000",
    "Unicode: naïve café, Straße, Ελληνικά, русский, 日本語のテキスト, 한국어",
    "Emoji 😀🎉👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() { println!(\"{}\", x[0] >> 2); } // tabs\there",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "It's, we're, they'll, I'd, you've - contractions!",
    "a<|endoftext|>b <|im_end|>c",
    "   \n\t \n",
]

CHAT = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
PLAIN = [
    "The history of the printing press begins in the fifteenth century,",
    "def quicksort(arr):\n",
]


def greedy(m, prompt_ids):
    m.reset()
    m.eval(prompt_ids)
    steps = []
    for _ in range(STEPS):
        logits = np.array(m.scores[m.n_tokens - 1], dtype=np.float64)
        order = np.argsort(-logits, kind="stable")
        top = order[:TOPN]
        tok = int(order[0])
        steps.append({
            "token": tok,
            "margin": float(logits[order[0]] - logits[order[1]]),
            "top_ids": [int(i) for i in top],
            "top_logits": [float(logits[i]) for i in top],
        })
        m.eval([tok])
    return steps


def perplexity(m, ids, ctx, per_window=False):
    out = {}
    windows = []
    for half in (False, True):
        nll, count = 0.0, 0
        first = ctx // 2 if half else 0
        for w in range(len(ids) // ctx):
            window = ids[w * ctx:(w + 1) * ctx]
            m.reset()
            m.eval(window)
            logits = np.array(m.scores[:ctx], dtype=np.float64)
            w_nll, w_count = 0.0, 0
            for pos in range(first, ctx - 1):
                row = logits[pos]
                mx = row.max()
                lse = np.log(np.exp(row - mx).sum()) + mx
                w_nll += lse - row[window[pos + 1]]
                w_count += 1
            nll += w_nll
            count += w_count
            if not half:
                windows.append({"ppl": float(np.exp(w_nll / w_count)), "tokens_scored": w_count})
        out["half" if half else "all"] = {"ppl": float(np.exp(nll / count)), "tokens_scored": count}
    if per_window:
        out["windows"] = windows
    return out


def main():
    model = sys.argv[1]
    m = Llama(model_path=model, n_ctx=1024, n_threads=2, n_threads_batch=2, logits_all=True, verbose=False, seed=0)
    fixture = {
        "generator": "scripts/make_llamacpp_fixture.py",
        "llama_cpp_python": __import__("llama_cpp").__version__,
        "model_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "tokenizer": [
            {"text": t, "ids": m.tokenize(t.encode(), add_bos=False, special=True)} for t in TOKENIZER_TEXTS
        ],
        "greedy": [],
    }
    for name, text in [("chat", CHAT), ("plain0", PLAIN[0]), ("plain1", PLAIN[1])]:
        ids = m.tokenize(text.encode(), add_bos=False, special=True)
        fixture["greedy"].append({"name": name, "prompt": text, "prompt_ids": ids, "steps": greedy(m, ids)})
    text = (ROOT / "tests/fixtures/declaration.txt").read_text()
    ids = m.tokenize(text.encode(), add_bos=False, special=False)
    fixture["perplexity"] = {"file": "tests/fixtures/declaration.txt", "ctx": PPL_CTX, "n_tokens": len(ids),
                             **perplexity(m, ids, PPL_CTX)}
    del m
    # positions up to 2,047: a context of its own (the fixture above is unchanged by it)
    m = Llama(model_path=model, n_ctx=LONG_CTX, n_batch=512, n_threads=2, n_threads_batch=2, logits_all=True,
              verbose=False, seed=0)
    text = (ROOT / "tests/fixtures/essay.txt").read_text()
    ids = m.tokenize(text.encode(), add_bos=False, special=False)
    assert len(ids) >= 4000, len(ids)
    fixture["perplexity_long"] = {"file": "tests/fixtures/essay.txt", "ctx": LONG_CTX, "n_tokens": len(ids),
                                  **perplexity(m, ids, LONG_CTX, per_window=True)}
    out = ROOT / "tests/fixtures/llamacpp_smollm2.json"
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
