#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, one after another:
#   scripts/fuzz.sh [SECONDS] [TARGET...]        (default 30 s, all targets)
#   scripts/fuzz.sh smoke [TARGET...]            (CI: a fixed seed and a fixed number of inputs
#                                                 per target, about 20 s each, so a run is
#                                                 repeatable: the same inputs on every machine)
# Needs the nightly toolchain and cargo-fuzz (scripts/setup.sh --test installs both). New inputs
# go to fuzz/corpus/<target>/ (ignored); the committed seeds are fuzz/seeds/<target>/. A failure
# leaves its input in fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/ once fixed,
# where tests/fuzz_regressions.rs replays it on every test run. Prints one summary line per
# target (executions, seconds, failures) and exits non-zero if any target failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
secs=${1:-30}
shift || true
smoke=0
# smoke: the run ends by its input count; the time limit only guards against a hang, and a
# smoke run that reaches it (or ends on fewer inputs for any reason) fails rather than passing
# on fewer inputs
if [ "$secs" = smoke ]; then smoke=1; secs=1200; fi
# smoke: inputs per target (about 20 s each on a 2-core CI machine) and libFuzzer's seed
declare -A smoke_runs=([gguf_parse]=6000 [gguf_engine]=2500 [safetensors]=150000 [tokenizer]=12000
  [chat_template]=12000 [sampler]=150000)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(gguf_parse gguf_engine safetensors tokenizer chat_template sampler)

# -O with -a: optimized, but with debug assertions and overflow checks (a wrapped size is a bug)
flags=(-O -a)
cargo +nightly fuzz build "${flags[@]}" || exit 1
mkdir -p fuzz/logs
failed=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  log="fuzz/logs/$t.log"
  # -rss_limit_mb: an input that makes us allocate past 2 GiB is a failure, not a slow run
  # the regressions go in as corpus too: replayed first, with the overflow checks stable lacks
  dirs=("fuzz/corpus/$t" "fuzz/seeds/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  extra=()
  # smoke: a fresh corpus each time (only the committed seeds and regressions go in), so the
  # run does not depend on what earlier runs left behind
  [ $smoke = 1 ] && { rm -rf "fuzz/corpus/$t"; mkdir -p "fuzz/corpus/$t"; extra=(-seed=1 -runs="${smoke_runs[$t]:-10000}"); }
  cargo +nightly fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- "${extra[@]}" \
    -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  want=${smoke_runs[$t]:-10000}
  if [ $rc -ne 0 ]; then
    failed=1
    echo "$t: FAILED after ${runs:-?} executions (log: $log; input in fuzz/artifacts/$t/)"
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -5
  elif [ $smoke = 1 ] && [ "${runs:-0}" -lt "$want" ]; then
    failed=1
    echo "$t: FAILED: the smoke run ended after ${runs:-?} of its $want inputs (time limit ${secs} s; log: $log)"
  else
    echo "$t: ${runs:-?} executions$([ $smoke = 1 ] || echo " in ${secs} s"), no failures"
  fi
done
exit $failed
