#!/usr/bin/env bash
# The front-proxy example end to end in Docker (examples/front-proxy/verify.sh): static binaries,
# FROM-scratch images, docker-compose up, the seed's checks, scaling, tear-down. Skipped (exit 0)
# on a machine without a Docker engine. Bounded: verify.sh's own waits are bounded, and the
# whole run is cut at DOCKER_VERIFY_TIMEOUT seconds (default 570).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
  echo "docker-verify: skipped: no Docker engine"
  exit 0
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  echo "docker-verify: skipped: no Docker Compose (docker compose / docker-compose)"
  exit 0
fi
# timeout sends TERM to verify.sh, whose EXIT trap tears the compose project down.
exec timeout --kill-after=20 "${DOCKER_VERIFY_TIMEOUT:-570}" examples/front-proxy/verify.sh
