#!/usr/bin/env python3
"""Writes tests/fixtures/arch/: small random-weight models of five architectures, quantized by
llama.cpp itself, with what llama.cpp says about them (issue 15, part 5: fidelity against
llama.cpp on architectures and quantization mixes we have no real small model for).

For each architecture one F32 GGUF is built with gguf-py (in a temporary folder, not committed),
then quantized with llama.cpp's own quantizer (llama_model_quantize, default parameters, so its
usual per-tensor mixes: Q6_K output, Q5_K/Q6_K attn_v and ffn_down in the first layers, ...):

  llama  Llama 3.x shape: GQA (8 heads, 2 KV heads, head 32), rope.freq_base 500000, a
         rope_freqs.weight tensor (llama3 scaling factors: 1 ... 2.7 ... 8), separate
         attn_q/k/v and ffn_gate/up/down, untied output.weight.          -> Q4_K_M, IQ4_NL
  qwen2  Q/K/V biases, GQA (8/2, head 32), tied embeddings (no output.weight),
         rope.freq_base 1e6.                                              -> Q5_K_M, F16
  qwen3  per-head attn_q_norm/attn_k_norm (64), key_length = value_length = 64 with
         n_embd/n_head = 32 (attn_q [512, 256], attn_output [256, 512]), GQA 8/2, no biases,
         tied embeddings, rope.freq_base 1e6.                             -> Q3_K_M, Q5_1
  phi3   fused attn_qkv ([n_embd + 2*kv_dim, n_embd], GQA 8/4, head 32), fused ffn_up
         ([2*n_ff, n_embd], gate half first), no ffn_gate, untied output,
         rope.freq_base 10000, no rope factors.                           -> Q4_K_M, Q3_K_M
  gemma3 6 layers; 4 heads, 1 KV head, key_length = value_length = 64 (attn_q [256, 256],
         attn_k/v [256, 64]), per-head attn_q_norm/attn_k_norm, post_attention_norm and
         post_ffw_norm, GeGLU (gelu_tanh(gate) * up), token_embd scaled by sqrt(n_embd), tied,
         rms eps 1e-6. attention.sliding_window 32: layers 0-4 slide (llama.cpp's default
         period 6, il % 6 < 5: a query at p sees keys p-31..p) with RoPE base 10000 (llama.cpp's
         default; no rope.freq_base_swa key), layer 5 attends to everything with
         rope.freq_base 1e6. The keys are those of a real Gemma 3 GGUF (no vocab_size,
         rope.dimension_count or sliding_window_pattern).                   -> F16, Q4_K_M
All: n_embd 256, 2 layers (gemma3 6), n_ff 512, context_length 4096. RoPE as llama.cpp: adjacent
pairs for llama, NEOX halves for qwen2/qwen3/phi3/gemma3. The Q/K rows of the llama model are
random, so they need none of convert_hf_to_gguf's permutation: the file is simply what llama.cpp
runs.
Weights are seeded normals: token_embd N(0,1), norms 1 +- 0.1, q/k so that q.k/sqrt(d) has a
spread of ~2, v/o/ffn keeping unit scale, output.weight N(0,1) (logits ~ N(0, 16^2)); the tied
models' attn_output/ffn_down are 6x louder, else the current token's own embedding dominates
the final state and greedy repeats one token forever. gemma3's blocks end in RMSNorms, which undo
any scale of attn_output/ffn_down, so there the post norms carry the gain: post_attention_norm
~ 32 and post_ffw_norm ~ 128 (+-10%) against the sqrt(256) * N(0,1) embedding (its own logit
~ 16 * 256 / rms of the residual, ~320); attn/ffn/output norms 1 +- 0.1, attn_q/k_norm 1.4 +- 0.1
(q.k/sqrt(64) ~ N(0, 2^2)). Six such layers amplify rounding: 1e-3 relative noise on every
weight moves the logits by ~0.16 rms.

reference_logits() is the same network, float64 with an f16 KV cache: the weights as
gguf.quants.dequantize gives them, everything in float64 except K (after RoPE) and V, which are
rounded to float16 before attention as llama.cpp's default KV cache (and wisp's) stores them.
RMSNorm with the file's eps; RoPE theta_i = pos * base^(-2i/dims) / rope_freqs[i] (adjacent
pairs for llama, NEOX halves otherwise); GQA with consecutive query heads sharing a KV head;
softmax(q.k / sqrt(head_dim)); SwiGLU; qwen2's Q/K/V biases; qwen3's per-head q/k RMSNorm before
RoPE; phi3's fused qkv (rows Q, K, V) and ffn_up (gate rows first); tied heads use token_embd.
On the F32 base models llama.cpp agrees with it to 0.06 (max |diff| per prompt 0.025-0.056),
which checks the architectures above; gemma3 to 0.14 (rms 0.02; emulating llama.cpp's f16-table
GELU changes nothing, so it is f16 activations amplified by six layers). reference_gemma3() is
gemma3's (see its docstring: the sliding-window mask and per-layer RoPE base included); before
quantizing, check_window() builds the same weights with sliding_window 4096 and asserts that
llama.cpp's logits agree exactly before position 32 and differ (by 6-87) after it, and that the
reference follows llama.cpp (to 0.13) in both. A file without the key runs every layer global
with base 1e6 in llama.cpp (the reference reads it the same way, to 0.12). On the quantized
files llama.cpp's q8 activations move logits by ~0.3-0.6 rms, up to ~3.5 (summary.ref_max_abs
_diff; gemma3 Q4_K_M: 1.2-1.5 rms, up to 6.8, 13 of 96 argmaxes differ; gemma3 F16: 0.04 rms, up
to 0.23), so an engine with other rounding should compare ids only where llama.cpp's margin is
clearly larger. Each greedy run also carries the reference teacher-forced on llama.cpp's own
tokens (ref_* fields), so an engine can be held to the exact-arithmetic answer as well, and its
argmax compared where ref_margin is clear.

Tokenizers are llama.cpp's vocab-only GGUFs (~/.cache/wisp/llamacpp-vocabs/, or the folder given
by WISP_LLAMACPP_VOCABS) trimmed to VOCAB_KEEP = 1200 regular tokens (the embeddings are most of
each file but gemma3's; all the files are ~22 MB, ~15 MB without gemma3-f16.gguf's 7.4 MB):
  llama-bpe (llama), qwen2 (qwen2, qwen3): byte-level BPE; ids < VOCAB_KEEP are kept (they
    include the 256 byte tokens), merges only where both parts and the result are kept, then
    the special tokens the model needs re-appended at new ids (bos/eos/padding ids remapped).
  phi-3 (phi3): SentencePiece; the first VOCAB_KEEP ids (<unk>, <s>, </s>, <0x00>..<0xFF>,
    pieces) with their scores, then <|endoftext|> <|assistant|> <|system|> <|end|> <|user|>.
  llama-spm (gemma3): SentencePiece, the first VOCAB_KEEP ids (<unk>, <s>, </s>, the bytes,
    pieces) and nothing appended (Gemma's own vocab-only file in the suite is Gemma 4's).
tokenizer.ggml.pre, add_bos/add_eos and chat_template are copied as they are. Trimmed, phi-3
has no "▁" token: a lone space falls back to the bytes <0xE2><0x96><0x81>. general.name is
"wisp-ARCH-random"; for phi3 that contains "phi3", so llama.cpp (as for real Phi-3 GGUFs)
gives the special tokens rstrip: "<|end|>\n<|assistant|>\n" tokenizes without the newlines.

Per model file NAME.gguf there is NAME.json:
  generator, llama_cpp_python, gguf_py (versions), arch, ftype ("Q4_K_M", ...), file, sha256,
  size, vocab (the source vocab file), config {n_vocab, n_embd, n_layer, n_ff, n_head,
  n_head_kv, head_dim, rope_freq_base, rms_eps, n_ctx_train, tied, seed; gemma3's also
  sliding_window, rope_freq_base_swa, swa_layers (the sliding layers' indices)},
  tensors {name: {"type": ggml type name, "shape": [ne0, ne1, ...]}} (as gguf.GGUFReader reads
    the quantized file back),
  tokenizer [{text, add_special: false, parse_special: true, ids}] (4 texts, llama.cpp's ids;
    gemma3's last text is LONG instead of a chat prompt),
  greedy [{name ("chat", "plain": llama.cpp's tokenize of short English texts with
    add_special=True, parse_special=True; "random": seeded random ids; gemma3's: "text" (LONG,
    75 ids), "random" (70 ids), "plain" (19 ids): past the 32-token window in the prompt, or
    while decoding (positions up to 106)), prompt (text or null),
    prompt_ids, first_logits (llama.cpp's full logits vector after the prompt),
    ref_first_logits (the reference's full vector there),
    steps [{token, margin (top-two logit gap), top_ids, top_logits (its 32 largest),
            ref_token (the reference's argmax), ref_margin (the reference's own top-two gap over
            the whole vocabulary), ref_top_logits (the reference's logits at top_ids, in order)}] }]
  32 greedy steps each: eval the prompt, take the argmax, eval it, ... (end of generation ignored;
  ties go to the lower id). The ref_ fields are reference_logits() (gemma3: reference_gemma3())
  on prompt_ids followed by every step's token (teacher-forced on llama.cpp's sequence, never on
  the reference's own argmax), rounded to float32 first: ref_margin and ref_token are of the
  float32 vector.
  Logits are float32, written as the shortest decimal that reads back to the same float32.
  summary {steps, margin_gt_0_5 (fraction of steps), min_margin, distinct_ids (per prompt),
    logit_std, ref_max_abs_diff (all positions of the three runs, the whole vocabulary; 3
    digits), ref_argmax_differs (steps whose ref_token is not llama.cpp's token),
    ref_compared_max_abs_diff (exact decimal max |ref - llama.cpp| over every ref_first_logits
    and ref_top_logits value as written), ref_min_margin, ref_margin_gt_0_01 (how many steps)}.

Run: pip install gguf==0.19.0 numpy
     CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
     -DGGML_BMI2=ON -DGGML_AVX512=OFF" pip install llama-cpp-python==0.3.36
     python3 scripts/make_arch_fixtures.py [OUT_DIR]     (default tests/fixtures/arch)
Built for AVX2 as above (see scripts/make_llamacpp_fixture.py for why not natively). The output
is deterministic: a second run writes byte-identical files.
"""
import contextlib
import ctypes
import hashlib
import json
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import gguf
import llama_cpp
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent
VOCABS = Path(os.environ.get("WISP_LLAMACPP_VOCABS", Path.home() / ".cache/wisp/llamacpp-vocabs"))
VOCAB_KEEP = 1200
STEPS = 32
TOPN = 32
N_CTX = 128
THREADS = 2

N_EMBD, N_LAYER, N_FF, N_CTX_TRAIN = 256, 2, 512, 4096  # gemma3: n_layer 6 (its cfg)

ARCHS = {
    "llama": dict(vocab="llama-bpe", n_head=8, n_head_kv=2, head_dim=32, freq_base=500000.0, eps=1e-5,
                  tied=False, seed=1, specials=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                                "<|end_header_id|>", "<|eot_id|>"],
                  chat="<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\n",
                  ftypes=["Q4_K_M", "IQ4_NL"]),
    "qwen2": dict(vocab="qwen2", n_head=8, n_head_kv=2, head_dim=32, freq_base=1000000.0, eps=1e-6,
                  tied=True, seed=2, specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                  chat="<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
                  ftypes=["Q5_K_M", "F16"]),
    "qwen3": dict(vocab="qwen2", n_head=8, n_head_kv=2, head_dim=64, freq_base=1000000.0, eps=1e-6,
                  tied=True, seed=3, specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                  chat="<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
                  ftypes=["Q3_K_M", "Q5_1"]),
    "phi3": dict(vocab="phi-3", n_head=8, n_head_kv=4, head_dim=32, freq_base=10000.0, eps=1e-5,
                 tied=False, seed=4, specials=["<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"],
                 chat="<|user|>\nHi there<|end|>\n<|assistant|>\n",
                 ftypes=["Q4_K_M", "Q3_K_M"]),
    "gemma3": dict(vocab="llama-spm", n_head=4, n_head_kv=1, head_dim=64, freq_base=1000000.0, eps=1e-6,
                   tied=True, seed=5, specials=[], n_layer=6, sliding_window=32, swa_period=6,
                   freq_base_swa=10000.0, post_norm=(32.0, 128.0), ftypes=["F16", "Q4_K_M"]),
}

PLAIN = "Once upon a time, the cat sat on a mat."
# gemma3's prompts must reach past its 32-token window: this is 75 tokens (trimmed llama-spm)
LONG = ("The old man climbed the stairs every evening to light the lamp. One night a storm came in from "
        "the sea, and the wind was so strong that the windows shook. He kept the light on until morning.")
LONG_RANDOM = 70
TOKENIZER_TEXTS = [
    "Hello world",
    "  two  spaces,\nnew lines\n\n and\ttabs ",
    "Numbers 12345, 3.14 and naïve café!",
]


# ---------------------------------------------------------------- tokenizer

def read_field(f):
    """A GGUFReader field as a Python value (arrays as lists)."""
    t = f.types
    if t[0] == gguf.GGUFValueType.ARRAY:
        if t[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    if t[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]][0].item()


def trimmed_vocab(name, specials):
    """tokenizer.* metadata of llama.cpp's vocab NAME trimmed to VOCAB_KEEP regular tokens plus
    SPECIALS (re-appended in that order). Returns {key: (GGUFValueType, value)}."""
    r = gguf.GGUFReader(VOCABS / f"ggml-vocab-{name}.gguf")
    fields = {k: (f.types[0], read_field(f)) for k, f in r.fields.items() if k.startswith("tokenizer.")}
    tokens = fields["tokenizer.ggml.tokens"][1]
    types = fields["tokenizer.ggml.token_type"][1]
    scores = fields.get("tokenizer.ggml.scores", (None, None))[1]
    model = fields["tokenizer.ggml.model"][1]
    old_ids = list(range(VOCAB_KEEP)) + [tokens.index(s) for s in specials]
    assert all(i >= VOCAB_KEEP for i in old_ids[VOCAB_KEEP:]), specials
    remap = {old: new for new, old in enumerate(old_ids)}
    out = dict(fields)
    new_tokens = [tokens[i] for i in old_ids]
    out["tokenizer.ggml.tokens"] = (gguf.GGUFValueType.ARRAY, new_tokens)
    out["tokenizer.ggml.token_type"] = (gguf.GGUFValueType.ARRAY, [types[i] for i in old_ids])
    if scores is not None:
        out["tokenizer.ggml.scores"] = (gguf.GGUFValueType.ARRAY, [scores[i] for i in old_ids])
    if model == "gpt2":
        # every byte must stay a token (llama.cpp looks bytes up with .at())
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
        cs, n = bs[:], 0
        for b in range(256):
            if b not in bs:
                cs.append(256 + n)
                n += 1
        byte_chars = {chr(c) for c in cs}
        kept = set(new_tokens)
        assert byte_chars <= kept, "a byte token was trimmed"
        merges = []
        for m in fields["tokenizer.ggml.merges"][1]:
            a, b = m.split(" ", 1)
            if a in kept and b in kept and a + b in kept:
                merges.append(m)
        out["tokenizer.ggml.merges"] = (gguf.GGUFValueType.ARRAY, merges)
    for key in ["bos_token_id", "eos_token_id", "padding_token_id", "unknown_token_id", "eot_token_id"]:
        key = "tokenizer.ggml." + key
        if key in out:
            out[key] = (out[key][0], remap[out[key][1]])
    return out


# ---------------------------------------------------------------- model

def llama3_rope_factors(head_dim, base):
    """Llama 3.1's rope scaling as frequency factors (factor 8, low 1, high 4, original 8192)."""
    factor, low, high, orig = 8.0, 1.0, 4.0, 8192.0
    out = []
    for i in range(0, head_dim, 2):
        freq = base ** (-i / head_dim)
        wavelen = 2 * np.pi / freq
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def build_f32(arch, cfg, vocab, path):
    rng = np.random.default_rng(cfg["seed"])
    n_vocab = len(vocab["tokenizer.ggml.tokens"][1])
    nh, nkv, hd = cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"]

    def mat(rows, cols, std):
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)

    def vec(n, mean, std):
        return (mean + rng.standard_normal(n) * std).astype(np.float32)

    w = gguf.GGUFWriter(str(path), arch)
    w.add_string("general.name", f"wisp-{arch}-random")
    w.add_uint32("general.file_type", 0)
    w.add_uint32(f"{arch}.vocab_size", n_vocab)
    w.add_uint32(f"{arch}.context_length", N_CTX_TRAIN)
    w.add_uint32(f"{arch}.embedding_length", N_EMBD)
    w.add_uint32(f"{arch}.block_count", N_LAYER)
    w.add_uint32(f"{arch}.feed_forward_length", N_FF)
    w.add_uint32(f"{arch}.attention.head_count", nh)
    w.add_uint32(f"{arch}.attention.head_count_kv", nkv)
    if arch == "qwen3":
        w.add_uint32(f"{arch}.attention.key_length", hd)
        w.add_uint32(f"{arch}.attention.value_length", hd)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", cfg["eps"])
    w.add_float32(f"{arch}.rope.freq_base", cfg["freq_base"])
    w.add_uint32(f"{arch}.rope.dimension_count", hd)
    for key, (vtype, val) in vocab.items():
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = {"tokenizer.ggml.tokens": gguf.GGUFValueType.STRING,
                   "tokenizer.ggml.merges": gguf.GGUFValueType.STRING,
                   "tokenizer.ggml.token_type": gguf.GGUFValueType.INT32,
                   "tokenizer.ggml.scores": gguf.GGUFValueType.FLOAT32}[key]
            w.add_key_value(key, val, vtype, sub_type=sub)
        else:
            w.add_key_value(key, val, vtype)

    # scales: RMS-normed inputs have entries ~1; q.k/sqrt(hd) ~ N(0, 2); v/o/ffn keep ~unit rms;
    # logits ~ N(0, 16^2) so the top-two gap is mostly far above rounding and quantization noise
    qk = np.sqrt(2.0 / N_EMBD)
    # tied: logits = token_embd . norm(h), so with h ~ the current token's embedding every step
    # would pick the current token again; blocks GAIN times louder than the embedding avoid that
    gain = 6.0 if cfg["tied"] else 1.0
    t = {"token_embd.weight": mat(n_vocab, N_EMBD, 1.0), "output_norm.weight": vec(N_EMBD, 1.0, 0.1)}
    if not cfg["tied"]:
        t["output.weight"] = mat(n_vocab, N_EMBD, 1.0)
    if arch == "llama":
        t["rope_freqs.weight"] = llama3_rope_factors(hd, cfg["freq_base"])
    for i in range(N_LAYER):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = vec(N_EMBD, 1.0, 0.1)
        if arch == "phi3":
            t[p + "attn_qkv.weight"] = np.concatenate([mat(nh * hd, N_EMBD, qk), mat(nkv * hd, N_EMBD, qk),
                                                       mat(nkv * hd, N_EMBD, 1 / np.sqrt(N_EMBD))])
        else:
            t[p + "attn_q.weight"] = mat(nh * hd, N_EMBD, qk)
            t[p + "attn_k.weight"] = mat(nkv * hd, N_EMBD, qk)
            t[p + "attn_v.weight"] = mat(nkv * hd, N_EMBD, 1 / np.sqrt(N_EMBD))
        if arch == "qwen2":
            t[p + "attn_q.bias"] = vec(nh * hd, 0.0, 0.5)
            t[p + "attn_k.bias"] = vec(nkv * hd, 0.0, 0.5)
            t[p + "attn_v.bias"] = vec(nkv * hd, 0.0, 0.2)
        if arch == "qwen3":
            # q and k normalized per head: weights ~1.4 give q.k/sqrt(hd) a spread of ~2
            t[p + "attn_q_norm.weight"] = vec(hd, 1.4, 0.1)
            t[p + "attn_k_norm.weight"] = vec(hd, 1.4, 0.1)
        t[p + "attn_output.weight"] = mat(N_EMBD, nh * hd, gain / np.sqrt(nh * hd))
        t[p + "ffn_norm.weight"] = vec(N_EMBD, 1.0, 0.1)
        if arch == "phi3":
            t[p + "ffn_up.weight"] = np.concatenate([mat(N_FF, N_EMBD, 1 / np.sqrt(N_EMBD)),
                                                     mat(N_FF, N_EMBD, 1 / np.sqrt(N_EMBD))])
        else:
            t[p + "ffn_gate.weight"] = mat(N_FF, N_EMBD, 1 / np.sqrt(N_EMBD))
            t[p + "ffn_up.weight"] = mat(N_FF, N_EMBD, 1 / np.sqrt(N_EMBD))
        t[p + "ffn_down.weight"] = mat(N_EMBD, N_FF, 2 * gain / np.sqrt(N_FF))
    for name, a in t.items():
        w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def build_gemma3_f32(cfg, vocab, path, sliding_window=None):
    """gemma3 with exactly the keys a real Gemma 3 GGUF has (no vocab_size, rope.dimension_count,
    rope.freq_base_swa or sliding_window_pattern: llama.cpp's defaults, 10000 and period 6, apply).
    SLIDING_WINDOW overrides the window (for the check that llama.cpp applies it); None: cfg's."""
    arch = "gemma3"
    rng = np.random.default_rng(cfg["seed"])
    n_vocab = len(vocab["tokenizer.ggml.tokens"][1])
    nh, nkv, hd, n_layer = cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"], cfg["n_layer"]

    def mat(rows, cols, std):
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)

    def vec(n, mean, std):
        return (mean + rng.standard_normal(n) * std).astype(np.float32)

    w = gguf.GGUFWriter(str(path), arch)
    w.add_string("general.name", f"wisp-{arch}-random")
    w.add_uint32("general.file_type", 0)
    w.add_uint32(f"{arch}.context_length", N_CTX_TRAIN)
    w.add_uint32(f"{arch}.embedding_length", N_EMBD)
    w.add_uint32(f"{arch}.block_count", n_layer)
    w.add_uint32(f"{arch}.feed_forward_length", N_FF)
    w.add_uint32(f"{arch}.attention.head_count", nh)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", cfg["eps"])
    w.add_uint32(f"{arch}.attention.key_length", hd)
    w.add_uint32(f"{arch}.attention.value_length", hd)
    w.add_float32(f"{arch}.rope.freq_base", cfg["freq_base"])
    w.add_uint32(f"{arch}.attention.sliding_window", sliding_window or cfg["sliding_window"])
    w.add_uint32(f"{arch}.attention.head_count_kv", nkv)
    for key, (vtype, val) in vocab.items():
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = {"tokenizer.ggml.tokens": gguf.GGUFValueType.STRING,
                   "tokenizer.ggml.token_type": gguf.GGUFValueType.INT32,
                   "tokenizer.ggml.scores": gguf.GGUFValueType.FLOAT32}[key]
            w.add_key_value(key, val, vtype, sub_type=sub)
        else:
            w.add_key_value(key, val, vtype)

    # The residual starts at sqrt(n_embd) * token_embd (rms 16) and every block adds an RMS-normed
    # output times its post norm, so the post norms (not attn_output/ffn_down, whose scale the
    # norms undo) are what makes the blocks louder than the embedding: cfg's post_norm gives the
    # means of post_attention_norm and post_ffw_norm (std 10% of it); with norms ~1 the tied
    # head would see the current token's embedding and repeat it.
    # q/k are normed per head: weights ~1.4 give q.k/sqrt(head_dim) a spread of ~2.
    attn_gain, ffn_gain = cfg["post_norm"]
    t = {"token_embd.weight": mat(n_vocab, N_EMBD, 1.0), "output_norm.weight": vec(N_EMBD, 1.0, 0.1)}
    for i in range(n_layer):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = vec(N_EMBD, 1.0, 0.1)
        t[p + "attn_q.weight"] = mat(nh * hd, N_EMBD, 1 / np.sqrt(N_EMBD))
        t[p + "attn_k.weight"] = mat(nkv * hd, N_EMBD, 1 / np.sqrt(N_EMBD))
        t[p + "attn_v.weight"] = mat(nkv * hd, N_EMBD, 1 / np.sqrt(N_EMBD))
        t[p + "attn_q_norm.weight"] = vec(hd, 1.4, 0.1)
        t[p + "attn_k_norm.weight"] = vec(hd, 1.4, 0.1)
        t[p + "attn_output.weight"] = mat(N_EMBD, nh * hd, 1 / np.sqrt(nh * hd))
        t[p + "post_attention_norm.weight"] = vec(N_EMBD, attn_gain, 0.1 * attn_gain)
        t[p + "ffn_norm.weight"] = vec(N_EMBD, 1.0, 0.1)
        t[p + "ffn_gate.weight"] = mat(N_FF, N_EMBD, 1 / np.sqrt(N_EMBD))
        t[p + "ffn_up.weight"] = mat(N_FF, N_EMBD, 1 / np.sqrt(N_EMBD))
        t[p + "ffn_down.weight"] = mat(N_EMBD, N_FF, 1 / np.sqrt(N_FF))
        t[p + "post_ffw_norm.weight"] = vec(N_EMBD, ffn_gain, 0.1 * ffn_gain)
    for name, a in t.items():
        w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@contextlib.contextmanager
def quiet_stderr():
    """llama.cpp's quantizer logs every tensor to fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quantize(src, dst, ftype):
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread = THREADS
    p.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    with quiet_stderr():
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p))
    assert rc == 0, f"llama_model_quantize({dst.name}) = {rc}"


# ---------------------------------------------------------------- a float64 reference

def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, pos, base, factors, neox):
    """x [n, heads, d]: llama.cpp's RoPE, adjacent pairs (llama) or halves (NEOX)."""
    d = x.shape[-1]
    inv = base ** (-np.arange(0, d, 2) / d) / factors
    ang = pos[:, None, None] * inv[None, None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    if neox:
        a, b = x[..., : d // 2], x[..., d // 2:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], -1)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
    return out


def reference_logits(path, arch, cfg, ids):
    """The model's logits at every position of IDS (teacher-forced), float64 with an f16 KV cache:
    the dequantized weights (gguf.quants.dequantize) in float64 throughout, except that K (after
    RoPE) and V are rounded to float16 before attention, as llama.cpp's default KV cache (and
    wisp's) stores them. What llama.cpp computes without its other rounding (q8 activations, f32
    sums). eps, rope.freq_base and rope.dimension_count are read from the file."""
    r = gguf.GGUFReader(path)
    w = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64) for t in r.tensors}
    eps = read_field(r.fields[f"{arch}.attention.layer_norm_rms_epsilon"])
    base = read_field(r.fields[f"{arch}.rope.freq_base"])
    nh, nkv, hd = cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"]
    assert read_field(r.fields[f"{arch}.rope.dimension_count"]) == hd
    n = len(ids)
    pos = np.arange(n, dtype=np.float64)
    factors = w.get("rope_freqs.weight", np.ones(hd // 2))
    x = w["token_embd.weight"][ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        h = rmsnorm(x, w[p + "attn_norm.weight"], eps)
        if arch == "phi3":
            q, k, v = np.split(h @ w[p + "attn_qkv.weight"].T, [nh * hd, (nh + nkv) * hd], axis=-1)
        else:
            q, k, v = (h @ w[p + f"attn_{c}.weight"].T + w.get(p + f"attn_{c}.bias", 0.0) for c in "qkv")
        q, k, v = q.reshape(n, nh, hd), k.reshape(n, nkv, hd), v.reshape(n, nkv, hd)
        if arch == "qwen3":
            q = rmsnorm(q, w[p + "attn_q_norm.weight"], eps)
            k = rmsnorm(k, w[p + "attn_k_norm.weight"], eps)
        q = rope(q, pos, base, factors, arch != "llama")
        k = rope(k, pos, base, factors, arch != "llama")
        # the KV cache: K after RoPE and V stored as f16
        k, v = k.astype(np.float16).astype(np.float64), v.astype(np.float16).astype(np.float64)
        # GQA: consecutive query heads share a KV head
        k, v = np.repeat(k, nh // nkv, axis=1), np.repeat(v, nh // nkv, axis=1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        x = x + np.einsum("hqk,khd->qhd", s, v).reshape(n, nh * hd) @ w[p + "attn_output.weight"].T
        h = rmsnorm(x, w[p + "ffn_norm.weight"], eps)
        if arch == "phi3":
            g, u = np.split(h @ w[p + "ffn_up.weight"].T, 2, axis=-1)
        else:
            g, u = h @ w[p + "ffn_gate.weight"].T, h @ w[p + "ffn_up.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "ffn_down.weight"].T
    x = rmsnorm(x, w["output_norm.weight"], eps)
    return x @ w.get("output.weight", w["token_embd.weight"]).T


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def reference_gemma3(path, cfg, ids):
    """reference_logits() for gemma3, as llama.cpp's gemma3 graph: token_embd * sqrt(n_embd); per
    layer RMSNorm(attn_norm), Q/K/V, per-head RMSNorm of Q and K (attn_q_norm/attn_k_norm), NEOX
    RoPE (base 10000 on sliding-window layers, rope.freq_base on the others), K and V rounded to
    f16, softmax(q.k / sqrt(head_dim)) over the causal window (a sliding-window layer's query at p
    sees keys p-n_swa+1..p; layer il slides when il % 6 < 5), attn_output,
    RMSNorm(post_attention_norm), residual; RMSNorm(ffn_norm), gelu_tanh(gate) * up (the exact
    tanh form), ffn_down, RMSNorm(post_ffw_norm), residual; RMSNorm(output_norm); the tied head.
    Norm weights as stored (Gemma's +1 is in the file). float64 throughout. Without
    attention.sliding_window every layer is global with rope.freq_base, as in llama.cpp."""
    arch = "gemma3"
    r = gguf.GGUFReader(path)
    w = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64) for t in r.tensors}

    def key(k, default=None):
        f = r.fields.get(f"{arch}.{k}")
        return default if f is None else read_field(f)

    eps, base = key("attention.layer_norm_rms_epsilon"), key("rope.freq_base")
    n_embd = key("embedding_length")
    n_swa, n_layer = key("attention.sliding_window", 0), key("block_count")
    base_swa, period = key("rope.freq_base_swa", 10000.0), key("attention.sliding_window_pattern", 6)
    nh, nkv, hd = cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"]
    assert key("attention.key_length") == hd == key("attention.value_length")
    n = len(ids)
    pos = np.arange(n, dtype=np.float64)
    ones = np.ones(hd // 2)
    causal = np.triu(np.full((n, n), -np.inf), 1)
    # keys more than n_swa - 1 positions back are masked (llama.cpp: p1 - p0 >= n_swa)
    window = causal + np.tril(np.full((n, n), -np.inf), -n_swa) if n_swa else causal
    x = w["token_embd.weight"][ids] * np.sqrt(np.float64(n_embd))
    for i in range(n_layer):
        p = f"blk.{i}."
        swa = n_swa > 0 and i % period < period - 1
        h = rmsnorm(x, w[p + "attn_norm.weight"], eps)
        q, k, v = (h @ w[p + f"attn_{c}.weight"].T for c in "qkv")
        q, k, v = q.reshape(n, nh, hd), k.reshape(n, nkv, hd), v.reshape(n, nkv, hd)
        q = rmsnorm(q, w[p + "attn_q_norm.weight"], eps)
        k = rmsnorm(k, w[p + "attn_k_norm.weight"], eps)
        q = rope(q, pos, base_swa if swa else base, ones, True)
        k = rope(k, pos, base_swa if swa else base, ones, True)
        k, v = k.astype(np.float16).astype(np.float64), v.astype(np.float16).astype(np.float64)
        k, v = np.repeat(k, nh // nkv, axis=1), np.repeat(v, nh // nkv, axis=1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + (window if swa else causal)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = np.einsum("hqk,khd->qhd", s, v).reshape(n, nh * hd) @ w[p + "attn_output.weight"].T
        x = x + rmsnorm(a, w[p + "post_attention_norm.weight"], eps)
        h = rmsnorm(x, w[p + "ffn_norm.weight"], eps)
        f = gelu_tanh(h @ w[p + "ffn_gate.weight"].T) * (h @ w[p + "ffn_up.weight"].T)
        f = f @ w[p + "ffn_down.weight"].T
        x = x + rmsnorm(f, w[p + "post_ffw_norm.weight"], eps)
    x = rmsnorm(x, w["output_norm.weight"], eps)
    return x @ w.get("output.weight", w["token_embd.weight"]).T


# ---------------------------------------------------------------- llama.cpp's answers

def f32(x):
    """A float32 as the shortest decimal that reads back to it."""
    return float(str(np.float32(x)))


def dec_diff(a, b):
    """|a - b| of two written logits, exact in decimal (no binary noise like 1.16187599999)."""
    return float(abs(Decimal(repr(a)) - Decimal(repr(b))))


def greedy(m, prompt_ids):
    m.reset()
    m.eval(prompt_ids)
    steps, first = [], None
    for _ in range(STEPS):
        logits = np.array(m.scores[m.n_tokens - 1], dtype=np.float32)
        if first is None:
            first = [f32(x) for x in logits]
        order = np.argsort(-logits, kind="stable")
        tok = int(order[0])
        steps.append({
            "token": tok,
            "margin": float(np.float64(logits[order[0]]) - np.float64(logits[order[1]])),
            "top_ids": [int(i) for i in order[:TOPN]],
            "top_logits": [f32(logits[i]) for i in order[:TOPN]],
        })
        m.eval([tok])
    return first, steps, np.array(m.scores[:m.n_tokens], dtype=np.float64)


def tensor_types(path):
    r = gguf.GGUFReader(path)
    return {t.name: {"type": t.tensor_type.name, "shape": [int(x) for x in t.shape]} for t in r.tensors}


def record(arch, cfg, ftype, path, vocab_name, n_vocab):
    m = Llama(model_path=str(path), n_ctx=N_CTX, n_threads=THREADS, n_threads_batch=THREADS, logits_all=True,
              verbose=False, seed=0)
    assert m.n_vocab() == n_vocab, (m.n_vocab(), n_vocab)
    texts = TOKENIZER_TEXTS + [cfg["chat"] if "chat" in cfg else LONG]
    tok = [{"text": t, "add_special": False, "parse_special": True,
            "ids": m.tokenize(t.encode(), add_bos=False, special=True)} for t in texts]
    rng = np.random.default_rng(1000 + cfg["seed"])
    if arch == "gemma3":
        # past the 32-token window: in the prompt (text, random) and while decoding (plain)
        prompts = [("text", LONG, m.tokenize(LONG.encode(), add_bos=True, special=True)),
                   ("random", None, [int(i) for i in rng.integers(0, VOCAB_KEEP, LONG_RANDOM)]),
                   ("plain", PLAIN, m.tokenize(PLAIN.encode(), add_bos=True, special=True))]
    else:
        prompts = [("chat", cfg["chat"], m.tokenize(cfg["chat"].encode(), add_bos=True, special=True)),
                   ("plain", PLAIN, m.tokenize(PLAIN.encode(), add_bos=True, special=True)),
                   ("random", None, [int(i) for i in rng.integers(0, VOCAB_KEEP, 12)])]
    runs, diffs, spread, compared = [], [], [], []
    for name, text, ids in prompts:
        if name in ("text", "random") and arch == "gemma3":
            assert 60 <= len(ids) <= 80, (arch, name, len(ids))
        else:
            assert 5 <= len(ids) <= 20, (arch, name, len(ids))
        first, steps, scores = greedy(m, ids)
        # the reference teacher-forced on llama.cpp's own tokens; its logits rounded to float32
        # (as llama.cpp's are), and every ref_ field taken from those
        if arch == "gemma3":
            ref = reference_gemma3(path, cfg, ids + [s["token"] for s in steps])
        else:
            ref = reference_logits(path, arch, cfg, ids + [s["token"] for s in steps])
        ref32 = ref.astype(np.float32)
        for j, s in enumerate(steps):
            row = ref32[len(ids) - 1 + j]
            order = np.argsort(-row, kind="stable")
            s["ref_token"] = int(order[0])
            s["ref_margin"] = float(np.float64(row[order[0]]) - np.float64(row[order[1]]))
            s["ref_top_logits"] = [f32(row[i]) for i in s["top_ids"]]
            compared += [dec_diff(a, b) for a, b in zip(s["ref_top_logits"], s["top_logits"])]
        ref_first = [f32(x) for x in ref32[len(ids) - 1]]
        compared += [dec_diff(a, b) for a, b in zip(ref_first, first)]
        runs.append({"name": name, "prompt": text, "prompt_ids": ids, "first_logits": first,
                     "ref_first_logits": ref_first, "steps": steps})
        diffs.append(np.abs(ref - scores).max())
        spread.append(scores.std())
    del m
    margins = [s["margin"] for r in runs for s in r["steps"]]
    data = path.read_bytes()
    config = {"n_vocab": n_vocab, "n_embd": N_EMBD, "n_layer": cfg.get("n_layer", N_LAYER), "n_ff": N_FF,
              "n_head": cfg["n_head"], "n_head_kv": cfg["n_head_kv"], "head_dim": cfg["head_dim"],
              "rope_freq_base": cfg["freq_base"], "rms_eps": cfg["eps"], "n_ctx_train": N_CTX_TRAIN,
              "tied": cfg["tied"], "seed": cfg["seed"]}
    if arch == "gemma3":
        n_layer, period = cfg["n_layer"], cfg["swa_period"]
        config.update({"sliding_window": cfg["sliding_window"], "rope_freq_base_swa": cfg["freq_base_swa"],
                       "swa_layers": [i for i in range(n_layer) if i % period < period - 1]})
    return {
        "generator": "scripts/make_arch_fixtures.py",
        "llama_cpp_python": llama_cpp.__version__,
        "gguf_py": gguf_version(),
        "arch": arch,
        "ftype": ftype,
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "vocab": f"ggml-vocab-{vocab_name}.gguf",
        "config": config,
        "tensors": tensor_types(path),
        "tokenizer": tok,
        "greedy": runs,
        "summary": {"steps": len(margins),
                    "margin_gt_0_5": sum(x > 0.5 for x in margins) / len(margins),
                    "min_margin": min(margins),
                    "distinct_ids": {r["name"]: len({s["token"] for s in r["steps"]}) for r in runs},
                    # llama.cpp against reference_logits (float64 with an f16 KV cache, same
                    # quantized weights), rounded
                    "logit_std": float(f"{max(spread):.3g}"),
                    "ref_max_abs_diff": float(f"{max(diffs):.3g}"),
                    "ref_argmax_differs": sum(s["ref_token"] != s["token"] for r in runs for s in r["steps"]),
                    # exact: over every ref_first_logits and ref_top_logits value against llama.cpp's
                    "ref_compared_max_abs_diff": max(compared),
                    "ref_min_margin": min(s["ref_margin"] for r in runs for s in r["steps"]),
                    "ref_margin_gt_0_01": sum(s["ref_margin"] > 0.01 for r in runs for s in r["steps"])},
    }


def gguf_version():
    from importlib.metadata import version
    return version("gguf")


def dumps(v, indent=0):
    """JSON with objects indented, lists of numbers and short flat objects on one line."""
    pad = " " * indent
    if isinstance(v, dict):
        flat = json.dumps(v, ensure_ascii=False, separators=(", ", ": "))
        if len(flat) <= 80 and not any(isinstance(x, dict) or (isinstance(x, list) and any(
                isinstance(y, (dict, list)) for y in x)) for x in v.values()):
            return flat
        items = [f'{pad} {json.dumps(k)}: {dumps(x, indent + 1)}' for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
        items = [f"{pad} {dumps(x, indent + 1)}" for x in v]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(v, ensure_ascii=False)


def check_window(cfg, vocab, base, tmp):
    """That llama.cpp applies gemma3's sliding window, and reference_gemma3 with it: BASE (window
    32) against the same weights with sliding_window 4096 (same layers sliding, same RoPE bases),
    llama.cpp's logits over LONG plus 32 random ids must agree exactly before position 32 and
    differ after it, and the reference must follow llama.cpp in both files."""
    wide = Path(tmp) / "gemma3-f32-window4096.gguf"
    build_gemma3_f32(cfg, vocab, wide, sliding_window=4096)
    m = Llama(model_path=str(base), n_ctx=N_CTX, n_threads=THREADS, n_threads_batch=THREADS, logits_all=True,
              verbose=False, seed=0)
    rng = np.random.default_rng(999)
    ids = m.tokenize(LONG.encode(), add_bos=True, special=True)
    ids += [int(i) for i in rng.integers(0, VOCAB_KEEP, 32)]
    out = {}
    for name, path in [("32", base), ("4096", wide)]:
        if name != "32":
            m = Llama(model_path=str(path), n_ctx=N_CTX, n_threads=THREADS, n_threads_batch=THREADS,
                      logits_all=True, verbose=False, seed=0)
        m.eval(ids)
        lc = np.array(m.scores[:m.n_tokens], dtype=np.float64)
        del m
        ref_diff = np.abs(reference_gemma3(path, cfg, ids) - lc).max()
        assert ref_diff < 0.5, (name, ref_diff)
        out[name] = lc, ref_diff
    d = np.abs(out["32"][0] - out["4096"][0]).max(-1)
    n = cfg["sliding_window"]
    assert d[:n].max() == 0 and d[n:].min() > 1, d
    print(f"gemma3 window: llama.cpp window 32 vs 4096: |diff| 0 before position {n}, {d[n:].min():.3g}.."
          f"{d[n:].max():.3g} from it on ({len(ids)} tokens); reference vs llama.cpp (F32) "
          f"{out['32'][1]:.3g} and {out['4096'][1]:.3g}")


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/fixtures/arch"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for arch, cfg in ARCHS.items():
            vocab = trimmed_vocab(cfg["vocab"], cfg["specials"])
            n_vocab = len(vocab["tokenizer.ggml.tokens"][1])
            base = Path(tmp) / f"{arch}-f32.gguf"
            if arch == "gemma3":
                build_gemma3_f32(cfg, vocab, base)
                check_window(cfg, vocab, base, tmp)
            else:
                build_f32(arch, cfg, vocab, base)
            for ftype in cfg["ftypes"]:
                path = out / f"{arch}-{ftype.lower()}.gguf"
                quantize(base, path, ftype)
                fx = record(arch, cfg, ftype, path, cfg["vocab"], n_vocab)
                path.with_suffix(".json").write_text(dumps(fx) + "\n")
                s = fx["summary"]
                print(f"{path.name}: {fx['size']} bytes, margin>0.5 {s['margin_gt_0_5']:.3f}, "
                      f"min margin {s['min_margin']:.3f}, distinct {s['distinct_ids']}, logit std {s['logit_std']}, "
                      f"vs f64 max diff {s['ref_max_abs_diff']} (compared {s['ref_compared_max_abs_diff']:.4g}), "
                      f"argmax differs {s['ref_argmax_differs']}, ref min margin {s['ref_min_margin']:.4g}, "
                      f"ref margin>0.01 {s['ref_margin_gt_0_01']}")


if __name__ == "__main__":
    main()
