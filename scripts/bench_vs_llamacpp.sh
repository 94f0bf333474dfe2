#!/usr/bin/env bash
# Installs llama-cpp-python into a venv outside the clone (first time: ~10 minutes of building),
# then prints wisp beside llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${WISP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wisp}/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import llama_cpp, numpy" 2>/dev/null || "$venv/bin/pip" install -q numpy llama-cpp-python==0.3.36
exec "$venv/bin/python" scripts/bench_vs_llamacpp.py "$@"
