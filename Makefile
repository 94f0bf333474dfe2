# Two commands for a newcomer (see README):
#   make run    set up, then answer a question with the default model
#   make test   set up, then run every test
# Setup is idempotent; toolchains and models are cached outside the clone (~/.cache/wisp).

SHELL := /bin/bash
WISP := target/release/wisp
PROMPT ?= What is the capital of France?

.PHONY: run test setup test-setup build fmt-check bench-llamacpp bench-backends bench-gpu pkg serve test-browser bench-browser fuzz fuzz-smoke soak

setup:
	@scripts/setup.sh

build: setup
	cargo build --release --locked

run: build
	$(WISP) generate --chat --prompt "$(PROMPT)" --temperature 0 --max-tokens 128

test-setup: build
	@scripts/setup.sh --test

test: test-setup
	cargo fmt --check
	cargo clippy --release --locked --all-targets -- -D warnings
	cargo clippy --release --locked --lib --target wasm32-unknown-unknown -- -D warnings
	cargo clippy --release --locked --lib --target wasm32-unknown-unknown --target-dir target/relaxed \
	  --config 'target.wasm32-unknown-unknown.rustflags=["-C", "target-feature=+simd128,+relaxed-simd"]' -- -D warnings
	scripts/threads_cargo.sh clippy -- -D warnings
	WISP_REQUIRE_GPU=1 cargo test --release --locked
	scripts/wasm_test.sh
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory test-browser

# every fuzz target on a fixed seed and number of inputs, about 20 s each (CI: repeatable);
# `make fuzz FUZZ_SECONDS=600` for the long runs that look for new failures (RELIABILITY.md)
fuzz-smoke: test-setup
	scripts/fuzz.sh smoke

fuzz: test-setup
	scripts/fuzz.sh $${FUZZ_SECONDS:-600}

# long use of one engine on the default model: memory and GPU objects at intervals (RELIABILITY.md)
soak: build
	scripts/soak.sh

# the npm package's wasm build into pkg/generated/ (ignored)
pkg: setup
	scripts/build_pkg.sh

# the demo page and the tutor widget with the default model, on http://127.0.0.1:8080
serve: build pkg
	node scripts/serve.mjs

# wisp-llm in Debian's headless Chromium (playwright-core; never downloads a browser)
test-browser: pkg
	cd tests/browser && npm ci --silent --no-audit --no-fund && node --test --test-concurrency=1 --test-force-exit --test-timeout=1200000 pack.test.mjs engine.test.mjs widget.test.mjs quiz.test.mjs alternatives.test.mjs hardening.test.mjs instruct.test.mjs evaluate.test.mjs threads.test.mjs

# wisp beside llama.cpp (llama-cpp-python) at equal threads, in one run
bench-llamacpp: build
	scripts/bench_vs_llamacpp.sh

# wisp's GPU backend (lavapipe here, a real GPU elsewhere) beside its CPU backend, in one run
bench-backends: test-setup
	scripts/bench_backends.sh

# native GPU speed on random weights of the default model's and GPT-2 medium's shapes (made on the
# spot by `wisp synth`, so no model file has to reach the GPU machine); PEAK_GBS overrides the
# bandwidth looked up from nvidia-smi
bench-gpu: build
	scripts/bench_gpu.sh $${PEAK_GBS:+--peak-gbs $$PEAK_GBS}

# wisp (wasm CPU; WebGPU on a real adapter) beside wllama 1 and 2 threads in one headless Chromium
bench-browser: test-setup pkg
	cd tests/browser && npm ci --silent --no-audit --no-fund && node bench.mjs --runs $${RUNS:-3} $${MODEL:+--model $$MODEL}
