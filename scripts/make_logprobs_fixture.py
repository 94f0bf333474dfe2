#!/usr/bin/env python3
"""Writes tests/fixtures/llamacpp_logprobs.json: llama.cpp's token log-probabilities on the default
model, for tests/logprobs.rs.

For a chat prompt and two plain ones (the prompts of scripts/make_llamacpp_fixture.py), 24 greedy
steps; per step the chosen id, its log-probability, the top-5 ids with theirs, and the top-two
margin. The log-probabilities are what llama-cpp-python reports for `logprobs` in
`create_completion` (`Llama.logits_to_logprobs`: the log-softmax of the step's logits), computed
here from the ids rather than its token-text-keyed dictionaries.

Run (llama.cpp built for AVX2, as scripts/make_llamacpp_fixture.py says):
     python3 scripts/make_logprobs_fixture.py MODEL.gguf
"""
import json
import sys
from pathlib import Path

import numpy as np
from llama_cpp import Llama

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_llamacpp_fixture import CHAT, PLAIN  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STEPS = 24
TOPN = 5


def steps(m, prompt_ids):
    m.reset()
    m.eval(prompt_ids)
    out = []
    for _ in range(STEPS):
        logits = np.array(m.scores[m.n_tokens - 1], dtype=np.float32)
        lp = Llama.logits_to_logprobs(logits)
        order = np.argsort(-logits, kind="stable")
        tok = int(order[0])
        out.append({
            "token": tok,
            "logprob": float(lp[tok]),
            "top": [[int(i), float(lp[i])] for i in order[:TOPN]],
            "margin": float(logits[order[0]] - logits[order[1]]),
        })
        m.eval([tok])
    return out


def main():
    m = Llama(model_path=sys.argv[1], n_ctx=512, n_threads=2, n_threads_batch=2, logits_all=True, verbose=False,
              seed=0)
    fixture = {"generator": "scripts/make_logprobs_fixture.py", "llama_cpp_python": __import__("llama_cpp").__version__,
               "model_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "prompts": []}
    for name, text in [("chat", CHAT), ("plain0", PLAIN[0]), ("plain1", PLAIN[1])]:
        ids = m.tokenize(text.encode(), add_bos=False, special=True)
        fixture["prompts"].append({"name": name, "prompt_ids": ids, "steps": steps(m, ids)})
    out = ROOT / "tests/fixtures/llamacpp_logprobs.json"
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
