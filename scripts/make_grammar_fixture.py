#!/usr/bin/env python3
"""Writes tests/fixtures/llamacpp_grammar.json: llama.cpp's greedy output under GBNF grammars on the
default model, for tests/grammar_golden.rs.

Each case: a grammar (text, a JSON Schema converted as below, or the name of one of llama.cpp's
example grammars, read from the llama-cpp-python 0.3.36 sdist's vendor/llama.cpp/grammars/ as
scripts/setup.sh caches it), a chat
prompt, and llama-cpp-python's greedy ids under `LlamaGrammar` (temp 0: the grammar's mask, then
the argmax), until end-of-generation or MAX_TOKENS, with the text.

Run (llama.cpp built for AVX2, as scripts/make_llamacpp_fixture.py says):
     python3 scripts/make_grammar_fixture.py MODEL.gguf [GRAMMARS_DIR]
"""
import json
import os
import sys
from pathlib import Path

import llama_cpp
from llama_cpp import Llama, LlamaGrammar

ROOT = Path(__file__).resolve().parent.parent
MAX_TOKENS = 48
CACHE = Path(os.environ.get("WISP_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wisp"))


def chat(q):
    return f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


# JSON Schemas: converted by llama-cpp-python's converter with one rule as llama.cpp's C++
# converter writes it (no raw control characters in strings; wisp's converter does the same, see
# src/grammar/json_schema.rs), the grammar text recorded for the test to compare with its own
CAT_SCHEMA = ('{"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}, '
              '"colour": {"enum": ["red", "green", "blue"]}, "toys": {"type": "array", "items": {"type": "string", '
              '"maxLength": 15}, "minItems": 1, "maxItems": 3}}, "required": ["name", "age", "colour", "toys"]}')
QUIZ_SCHEMA = ('{"type": "object", "properties": {"question": {"type": "string", "maxLength": 120}, "choices": {"type": '
               '"array", "items": {"type": "string", "maxLength": 40}, "minItems": 4, "maxItems": 4}, "answer": {"enum": '
               '[0, 1, 2, 3]}}, "required": ["question", "choices", "answer"]}')
PY_CHAR = r'char ::= [^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
CPP_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'


def schema_gbnf(schema):
    from llama_cpp.llama_grammar import json_schema_to_gbnf
    text = json_schema_to_gbnf(schema)
    assert PY_CHAR in text.split("\n"), text
    return "\n".join(CPP_CHAR if line == PY_CHAR else line for line in text.split("\n"))


CASES = [
    ("yes-no", {"gbnf": 'root ::= ("yes" | "no") "."\n'}, chat("Is Paris the capital of France? Answer yes or no.")),
    ("json", {"file": "json.gbnf"}, chat("Describe a cat as a JSON object with its name and age.")),
    ("list", {"file": "list.gbnf"}, chat("List three fruits.")),
    ("arithmetic", {"file": "arithmetic.gbnf"}, chat("Write two equations.")),
    ("colour", {"gbnf": 'root ::= "The colour is " colour "."\ncolour ::= "red" | "green" | "blue" | "yellow"\n'},
     chat("What colour is the sky?")),
    ("digits", {"gbnf": 'root ::= [0-9]{1,4} ("," [0-9]{1,4}){2}\n'}, chat("Give three numbers.")),
    ("schema-cat", {"schema": CAT_SCHEMA}, chat("Describe a cat in JSON.")),
    ("schema-quiz", {"schema": QUIZ_SCHEMA}, chat("Write a quiz question about the planets as JSON.")),
]


def main():
    grammars = Path(sys.argv[2]) if len(sys.argv) > 2 else CACHE / "llamacpp-grammars"
    m = Llama(model_path=sys.argv[1], n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False, seed=0)
    out = {"generator": "scripts/make_grammar_fixture.py", "llama_cpp_python": __import__("llama_cpp").__version__,
           "model_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "cases": []}
    vocab = llama_cpp.llama_model_get_vocab(m._model.model)
    for name, g, prompt in CASES:
        if "gbnf" in g:
            text = g["gbnf"]
        elif "schema" in g:
            text = g["gbnf_from_schema"] = schema_gbnf(g["schema"])
        else:
            text = (grammars / g["file"]).read_text()
        grammar = LlamaGrammar.from_string(text, verbose=False)
        ids = m.tokenize(prompt.encode(), add_bos=False, special=True)
        got = []
        for tok in m.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, grammar=grammar):
            if llama_cpp.llama_vocab_is_eog(vocab, tok):
                break
            got.append(int(tok))
            if len(got) >= MAX_TOKENS:
                break
        case = {"name": name, "prompt_ids": ids, "ids": got, "text": m.detokenize(got).decode("utf-8", "replace")}
        case.update(g)
        out["cases"].append(case)
        print(name, repr(case["text"]))
    path = ROOT / "tests/fixtures/llamacpp_grammar.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
