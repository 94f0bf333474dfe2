#!/usr/bin/env bash
# Runs a cargo subcommand on the threaded wasm build: `scripts/threads_cargo.sh build|clippy ARGS…`
# (build_pkg.sh builds it; `make test` runs clippy on it). The relaxed-SIMD build plus shared
# memory and atomics, so the CPU pool's workers are Web Workers on the one memory
# (pkg/thread.js): the standard library is rebuilt with atomics (the nightly toolchain's
# -Z build-std, from its rust-src); the memory is imported (each worker instantiates the module
# on it), may grow to 4 GiB, and exports the TLS symbols wasm-bindgen's thread support needs.
# Its own target dir (target/threads), so it never evicts the other builds' caches.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/nightly.sh
sub="$1"
shift
flags='["-C", "target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128,+relaxed-simd",
  "-C", "link-arg=--shared-memory", "-C", "link-arg=--import-memory", "-C", "link-arg=--max-memory=4294967296",
  "-C", "link-arg=--export=__wasm_init_tls", "-C", "link-arg=--export=__tls_size",
  "-C", "link-arg=--export=__tls_align", "-C", "link-arg=--export=__tls_base"]'
cargo +nightly "$sub" --release --locked --lib --target wasm32-unknown-unknown --target-dir target/threads \
  -Z build-std=panic_abort,std --config "target.wasm32-unknown-unknown.rustflags=$flags" "$@"
