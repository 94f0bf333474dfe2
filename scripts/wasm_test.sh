#!/usr/bin/env bash
# Runs the wasm32-only tests (tests/wasm_simd.rs: the SIMD128 kernels against the scalar
# specification) in Node through wasm-bindgen-test-runner.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm_bindgen_cli.sh
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$bindgen_bin/wasm-bindgen-test-runner" \
  cargo test --release --locked --target wasm32-unknown-unknown --test wasm_simd
