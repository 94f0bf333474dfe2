# Sourced by setup.sh --test and threads_cargo.sh: the nightly Rust toolchain (libFuzzer's
# sanitizer flags for cargo fuzz; atomics for the threaded wasm build) with its rust-src, which
# the threaded build's -Z build-std compiles the standard library from, and clippy (make test
# lints the threaded build). Installed once, by rustup, outside the clone.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "installing the nightly Rust toolchain (cargo fuzz, the threaded wasm build)"
  rustup toolchain install nightly --profile minimal >/dev/null
fi
if [ ! -f "$(rustc +nightly --print sysroot)/lib/rustlib/src/rust/library/Cargo.lock" ]; then
  echo "installing the nightly toolchain's rust-src (the threaded wasm build's -Z build-std)"
  rustup component add rust-src --toolchain nightly >/dev/null
fi
if ! cargo +nightly clippy --version >/dev/null 2>&1; then
  echo "installing the nightly toolchain's clippy (make test lints the threaded wasm build)"
  rustup component add clippy --toolchain nightly >/dev/null
fi
