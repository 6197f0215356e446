#!/usr/bin/env bash
# Legate vs Envoy side by side on one config: HTTP/1.1 keep-alive through each proxy to an nginx
# upstream. Each proxy runs with --concurrency 1 pinned to core 0; wrk (1 thread, 32 connections)
# and nginx run on core 1. Reports proxy CPU µs per request (utime+stime from /proc), throughput,
# p99 latency and RSS, and the Legate/Envoy ratios. ROUNDS alternates the proxies to even out noise.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-2}
LEGATE=${LEGATE_BIN:-target/release/legate}
ENVOY=${ENVOY_BIN:-.venv/bin/envoy}
[ -x "$ENVOY" ] || { echo "bench: Envoy not found at $ENVOY (run scripts/setup.sh)" >&2; exit 1; }
cargo build --release -p legate >/dev/null 2>&1 || cargo build --release -p legate
mkdir -p bench/results
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
upstream_port=$(port)
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$upstream_port; location / { return 200 "hello"; } }
}
NGINX
taskset -c 1 nginx -c "$work/nginx.conf" & pids+=($!)
tck=$(getconf CLK_TCK)

# run_proxy NAME -> prints "name rps cpu_us p99 idle_rss_kb load_rss_kb"
run_proxy() {
  local name=$1 lport aport pid cmd
  lport=$(port); aport=$(port)
  sed -e "s/{listener_port}/$lport/; s/{admin_port}/$aport/; s/{upstream_port}/$upstream_port/" \
    bench/front-proxy.yaml > "$work/$name.yaml"
  case $name in
    legate) cmd=("$LEGATE" -c "$work/$name.yaml" --concurrency 1 -l error) ;;
    envoy) cmd=("$ENVOY" -c "$work/$name.yaml" --concurrency 1 -l error --use-dynamic-base-id) ;;
  esac
  taskset -c 0 "${cmd[@]}" >"$work/$name.log" 2>&1 & pid=$!; pids+=($pid)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$aport/ready" >/dev/null && break; sleep 0.05; done
  sleep 1
  local idle_rss; idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  taskset -c 1 wrk -t1 -c32 -d2s "http://127.0.0.1:$lport/" >/dev/null
  local before after out reqs
  before=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$(taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" --latency "http://127.0.0.1:$lport/")
  after=$(awk '{print $14+$15}' "/proc/$pid/stat")
  local load_rss; load_rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if echo "$out" | grep -q "Non-2xx"; then echo "bench: $name answered non-2xx: $(echo "$out" | grep Non-2xx)" >&2; exit 1; fi
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  python3 -c "print('$name', '$rps', round(($after-$before)/$tck*1e6/$reqs, 2), '$p99', $idle_rss, $load_rss)"
}

results=()
for _ in $(seq "$ROUNDS"); do
  results+=("$(run_proxy legate)")
  results+=("$(run_proxy envoy)")
done
printf '%s\n' "${results[@]}" | python3 bench/summarize.py | tee bench/results/latest.txt
