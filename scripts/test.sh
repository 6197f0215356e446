#!/usr/bin/env bash
# THE test command: everything, in order, exiting non-zero if anything failed.
#   1. a static release build of legate and the demo services (target/static; the differential
#      suite runs it, and the Docker images are made from it)
#   2. cargo test --workspace            (unit tests beside the code, crates/*/tests)
#   3. the differential suite            (tests/differential: real Envoy 1.40 vs Legate)
#   4. the Kubernetes manifest checks     (examples/front-proxy/test_k8s_manifests.py)
#   5. the front-proxy system in Docker   (scripts/docker-verify.sh; skipped without Docker)
# The last line totals every test run: "total: N passed, N failed, N skipped".
#
# Environment: LEGATE_BIN / ENVOY_BIN override the binaries the differential suite compares;
# PYTEST_ARGS adds pytest arguments (e.g. PYTEST_ARGS="-k routing"); DIFF_STRICT=1 turns the
# accepted differences of tests/differential/known_differences.py into failures.
set -uo pipefail
cd "$(dirname "$0")/.."

logs=$(mktemp -d "${TMPDIR:-/tmp}/legate-test.XXXXXX")
trap 'rm -rf "$logs"' EXIT
status=0
steps=()
step() {  # step NAME: records the outcome of the command that just ran
  local rc=$1 name=$2
  if [ "$rc" -eq 0 ]; then steps+=("$name ok"); else steps+=("$name FAILED($rc)"); status=1; fi
}
t0=$(date +%s)

# One release build serves the differential suite and the Docker images: static (crt-static),
# without LTO (several times faster to build), in target/static, exactly as
# examples/front-proxy/verify.sh builds it, so that its own build finds everything up to date.
echo "== cargo build --release (static) -p legate -p legate-demo-services"
STATIC_TARGET=x86_64-unknown-linux-gnu
CARGO_TARGET_DIR=$PWD/target/static CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --release --target "$STATIC_TARGET" -p legate -p legate-demo-services
build_rc=$?
step $build_rc "build"

echo "== cargo test --workspace"
cargo test --workspace 2>&1 | tee "$logs/cargo-test.log"
step "${PIPESTATUS[0]}" "cargo-test"

echo "== differential suite: real Envoy 1.40 vs Legate"
if [ $build_rc -ne 0 ] && [ -z "${LEGATE_BIN:-}" ]; then
  echo "skipped: the release build failed"
  steps+=("differential NOT RUN")
else
  export LEGATE_BIN="${LEGATE_BIN:-$PWD/target/static/$STATIC_TARGET/release/legate}"
  py=.venv/bin/python
  [ -x "$py" ] || { echo "no .venv: run scripts/setup.sh first" >&2; py=python3; }
  # shellcheck disable=SC2086
  "$py" -m pytest tests/differential -q ${PYTEST_ARGS:-} 2>&1 | tee "$logs/pytest.log"
  step "${PIPESTATUS[0]}" "differential"
fi

echo "== Kubernetes manifests (examples/front-proxy/test_k8s_manifests.py)"
"${py:-.venv/bin/python}" -m pytest examples/front-proxy/test_k8s_manifests.py -q -p no:cacheprovider 2>&1 | tee "$logs/pytest-k8s.log"
step "${PIPESTATUS[0]}" "k8s-manifests"

echo "== front-proxy system in Docker (scripts/docker-verify.sh; skipped without a Docker engine)"
bash scripts/docker-verify.sh 2>&1 | tee "$logs/docker.log"
step "${PIPESTATUS[0]}" "docker"

# Totals: cargo's "test result: ok. N passed; N failed; N ignored" lines, pytest's last lines and
# verify.sh's "front-proxy: N passed, N failed".
read -r passed failed skipped < <(
  {
    grep -h '^test result:' "$logs/cargo-test.log" 2>/dev/null |
      sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/'
    grep -h '^front-proxy: [0-9]* passed, [0-9]* failed' "$logs/docker.log" 2>/dev/null |
      sed -E 's/front-proxy: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2 0/'
    grep -h 'docker-verify: skipped' "$logs/docker.log" 2>/dev/null | sed 's/.*/0 0 1/'
    tail -q -n 3 "$logs/pytest.log" "$logs/pytest-k8s.log" 2>/dev/null | grep -E ' in [0-9.]+s' | python3 -c '
import re, sys
line = sys.stdin.read()
n = lambda w: sum(int(x) for x in re.findall(r"(\d+) " + w, line))
print(n("passed") + n("xpassed"), n("failed") + n("errors?"), n("skipped") + n("xfailed"))'
  } | awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}'
)
summary=$(printf '%s, ' "${steps[@]}")
echo "== ${summary%, } ($(( $(date +%s) - t0 )) s)"
if [ $status -eq 0 ]; then echo "== all tests passed"; else echo "== FAILED"; fi
echo "total: $passed passed, $failed failed, $skipped skipped"
exit $status
