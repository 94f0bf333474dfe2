#!/usr/bin/env python3
"""Writes the Hugging Face `tokenizer.json` of the tiny GPT-2 checkpoint and its golden ids:

- tests/fixtures/gpt2-tiny/tokenizer.json: a byte-level BPE with at most 1,000 ids (the
  checkpoint's vocabulary), trained by PyPI `tokenizers` on tests/fixtures/declaration.txt, with
  `<|endoftext|>` as its special token; so the directory is a whole checkpoint (weights, config,
  tokenizer) as `wisp --model DIR` loads it.
- tests/fixtures/tiny_tokenizer.json: what `tokenizers` itself gives for awkward texts (ids and
  decoded text), for tests/tokenizer_json.rs.

Run: pip install tokenizers==0.23.3; python3 scripts/make_tokenizer_json_fixture.py
"""
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests/fixtures"

tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.post_processor = processors.ByteLevel(trim_offsets=False)
trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, special_tokens=["<|endoftext|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train([str(FIX / "declaration.txt")], trainer)
assert tok.get_vocab_size() <= 1000, tok.get_vocab_size()
tok.save(str(FIX / "gpt2-tiny/tokenizer.json"))

texts = [
    "When in the Course of human events",
    "  leading spaces and   runs   of    spaces  ",
    "line one\nline two\n\n\nthree newlines\r\nwindows",
    "Digits 1234567890 and 3.14159",
    "Unicode: naïve café, Straße, Ελληνικά, 日本語",
    "Emoji 😀🎉",
    "He has refused his Assent to Laws<|endoftext|>the most wholesome",
    "<|endoftext|>",
]
cases = []
for t in texts:
    ids = tok.encode(t).ids
    cases.append({"text": t, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
(FIX / "tiny_tokenizer.json").write_text(json.dumps({
    "generator": "scripts/make_tokenizer_json_fixture.py",
    "tokenizers": __import__("tokenizers").__version__,
    "vocab_size": tok.get_vocab_size(),
    "eos_id": tok.token_to_id("<|endoftext|>"),
    "cases": cases,
}, ensure_ascii=False, indent=1) + "\n")
print(f"wrote tokenizer.json ({tok.get_vocab_size()} ids) and tiny_tokenizer.json")
