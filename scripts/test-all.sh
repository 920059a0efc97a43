#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (all features, doctests included).
# Works on a fresh machine with the Rust toolchain; installs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features
