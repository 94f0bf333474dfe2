# Two commands for a newcomer (see README):
#   make run    set up, then answer a question with the default model
#   make test   set up, then run every test
# Setup is idempotent; toolchains and models are cached outside the clone (~/.cache/wisp).

SHELL := /bin/bash
WISP := target/release/wisp
PROMPT ?= What is the capital of France?

.PHONY: run test setup test-setup build fmt-check bench-llamacpp

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
	cargo test --release --locked

# wisp beside llama.cpp (llama-cpp-python) at equal threads, in one run
bench-llamacpp: build
	scripts/bench_vs_llamacpp.sh
