# Sourced by build_pkg.sh and wasm_test.sh: puts wasm-bindgen-cli at exactly the crate's
# wasm-bindgen version into the cache outside the clone (installing it the first time) and the
# wasm32 target into rustup. Sets $cache and $bindgen_bin (the folder with wasm-bindgen and
# wasm-bindgen-test-runner).
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
cache="${WISP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wisp}"
bindgen_bin="$cache/tools/bin"
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ ! -x "$bindgen_bin/wasm-bindgen" ] || [ "$("$bindgen_bin/wasm-bindgen" --version | awk '{print $2}')" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version into $cache/tools"
  cargo install wasm-bindgen-cli --version "$version" --root "$cache/tools" --force --quiet
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
