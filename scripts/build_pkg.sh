#!/usr/bin/env bash
# Builds the wasm engine's three builds into pkg/generated/ (ignored): cargo for wasm32-unknown-unknown (SIMD128,
# .cargo/config.toml), wasm-bindgen-cli at exactly the crate's wasm-bindgen version (installed into
# the cache outside the clone), then wasm-opt (Debian's binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm_bindgen_cli.sh
bindgen="$bindgen_bin/wasm-bindgen"
if ! command -v wasm-opt >/dev/null; then
  echo "build_pkg: installing binaryen (wasm-opt)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen) >/dev/null
fi
cargo build --release --locked --lib --target wasm32-unknown-unknown
out=pkg/generated
rm -rf "$out" && mkdir -p "$out"
# wasm-opt runs before wasm-bindgen: Debian's binaryen (108) rewrites the externref table that
# wasm-bindgen adds into one the browser rejects; on the plain cargo output it is safe.
opt=target/wasm32-unknown-unknown/release/wisp.opt.wasm
wasm-opt -O3 --strip-debug --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-multivalue --enable-reference-types \
  target/wasm32-unknown-unknown/release/wisp.wasm -o "$opt"
"$bindgen" --target web --out-dir "$out" --out-name wisp "$opt"
size=$(stat -c %s "$out/wisp_bg.wasm"); gz=$(gzip -9c "$out/wisp_bg.wasm" | wc -c)
echo "build_pkg: $out/wisp_bg.wasm $((size / 1024)) KiB ($((gz / 1024)) KiB gzipped)"
# The relaxed-SIMD build (pkg/index.js loads it where the engine validates relaxed SIMD): its own
# target dir, so the two builds do not evict each other's cache. Not through wasm-opt: Debian's
# binaryen (108) cannot parse relaxed-SIMD instructions.
cargo build --release --locked --lib --target wasm32-unknown-unknown --target-dir target/relaxed \
  --config 'target.wasm32-unknown-unknown.rustflags=["-C", "target-feature=+simd128,+relaxed-simd"]'
"$bindgen" --target web --out-dir "$out/relaxed" --out-name wisp --remove-name-section --remove-producers-section \
  target/relaxed/wasm32-unknown-unknown/release/wisp.wasm
size=$(stat -c %s "$out/relaxed/wisp_bg.wasm"); gz=$(gzip -9c "$out/relaxed/wisp_bg.wasm" | wc -c)
echo "build_pkg: $out/relaxed/wisp_bg.wasm $((size / 1024)) KiB ($((gz / 1024)) KiB gzipped)"
# The threaded build (pkg/index.js loads it in cross-origin-isolated pages whose engine has
# SharedArrayBuffer and relaxed SIMD; its flags and toolchain in threads_cargo.sh)
scripts/threads_cargo.sh build
"$bindgen" --target web --out-dir "$out/threads" --out-name wisp --remove-name-section --remove-producers-section \
  target/threads/wasm32-unknown-unknown/release/wisp.wasm
size=$(stat -c %s "$out/threads/wisp_bg.wasm"); gz=$(gzip -9c "$out/threads/wisp_bg.wasm" | wc -c)
echo "build_pkg: $out/threads/wisp_bg.wasm $((size / 1024)) KiB ($((gz / 1024)) KiB gzipped)"
