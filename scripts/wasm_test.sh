#!/usr/bin/env bash
# Runs the wasm32-only tests (tests/wasm_simd.rs: the SIMD128 kernels against the scalar
# specification) in Node through wasm-bindgen-test-runner.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm_bindgen_cli.sh
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$bindgen_bin/wasm-bindgen-test-runner" \
  cargo test --release --locked --target wasm32-unknown-unknown --test wasm_simd
# The same tests on the relaxed-SIMD build (pkg/index.js loads it where the engine has relaxed
# SIMD), in headless Chromium through chromedriver: Node 20 only has relaxed SIMD behind an
# experimental flag, and there its int8 dot instruction returns twice the dot product.
# wasm-bindgen-test-runner reads the browser's arguments from ./webdriver.json.
trap 'rm -f webdriver.json' EXIT
cat >webdriver.json <<'JSON'
{ "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox",
  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
  "--disable-quic", "--disable-dev-shm-usage"] } }
JSON
CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$bindgen_bin/wasm-bindgen-test-runner" \
  cargo test --release --locked --target wasm32-unknown-unknown --test wasm_simd --target-dir target/relaxed \
  --config 'target.wasm32-unknown-unknown.rustflags=["-C", "target-feature=+simd128,+relaxed-simd"]'
