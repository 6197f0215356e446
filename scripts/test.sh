#!/usr/bin/env bash
# The whole test suite: unit and integration tests of every crate (cargo test), then the
# differential suite that runs the same configs through real Envoy and Legate.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo build --release -p legate"
cargo build --release -p legate
echo "== cargo test --workspace"
cargo test --workspace
echo "== differential suite (real Envoy vs Legate)"
LEGATE_BIN="$PWD/target/release/legate" .venv/bin/python -m pytest tests/differential -q
echo "== all tests passed"
