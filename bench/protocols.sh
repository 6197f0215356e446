#!/usr/bin/env bash
# Legate vs Envoy on TLS and HTTP/2 (bench/protocols.yaml), side by side in one run: proxy CPU µs
# per request with h2load (core 1) against each proxy (--concurrency 1, core 0) in front of an
# nginx upstream (core 1), for
#   https-h1   HTTP/1.1 keep-alive over TLS   (h2load --h1, 32 connections)
#   https-h2   HTTP/2 over TLS (ALPN h2)      (8 connections x 10 streams)
#   h2c        HTTP/2 prior knowledge         (8 connections x 10 streams)
#   handshake  one request per new TLS connection (full handshakes; µs per connection)
# and the Legate/Envoy ratio of each.
#
#   bench/protocols.sh          DURATION=10 (seconds per h2load run), HANDSHAKES=2000
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
HANDSHAKES=${HANDSHAKES:-2000}
LEGATE=${LEGATE_BIN:-target/release/legate}
ENVOY=${ENVOY_BIN:-.venv/bin/envoy}
NGINX=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
. bench/lib.sh
need h2load taskset curl python3 openssl getconf
[ -x "$ENVOY" ] || { echo "bench: Envoy not found at $ENVOY (run scripts/setup.sh)" >&2; exit 1; }
legate_binary

mkdir -p bench/results
bench_init legate-bench-proto
tck=$(getconf CLK_TCK)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1

upstream_port=$(port)
mkdir -p "$work/upstream"
cat > "$work/upstream.conf" <<NGINX
worker_processes 1; daemon off; pid $work/upstream/nginx.pid; error_log $work/upstream/error.log error;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path $work/upstream/b; proxy_temp_path $work/upstream/p;
  fastcgi_temp_path $work/upstream/f; uwsgi_temp_path $work/upstream/u; scgi_temp_path $work/upstream/s;
  server { listen 127.0.0.1:$upstream_port; keepalive_requests 1000000; location / { return 200 "hello"; } } }
NGINX
taskset -c 1 "$NGINX" -p "$work/upstream" -c "$work/upstream.conf" >"$work/upstream.log" 2>&1 &
pids+=("$!"); wait_http "http://127.0.0.1:$upstream_port/" "$!" upstream

# measure PID NAME SCENARIO -- h2load args...: appends "name scenario done cpu_ticks user_ticks"
# to rows.
measure() {
  local pid=$1 name=$2 scenario=$3; shift 4
  local before after user_before user_after out done_n
  before=$(cpu_ticks "$pid"); user_before=$(user_ticks "$pid")
  out=$(taskset -c 1 h2load "$@" 2>&1) || { echo "bench: h2load failed ($name $scenario):" >&2; echo "$out" >&2; exit 1; }
  after=$(cpu_ticks "$pid"); user_after=$(user_ticks "$pid")
  done_n=$(awk '/^requests:/ {for (i=1;i<=NF;i++) if ($i=="succeeded,") print $(i-1)}' <<<"$out")
  [ -n "$done_n" ] && [ "$done_n" -gt 0 ] || { echo "bench: no successful requests ($name $scenario):" >&2; echo "$out" >&2; exit 1; }
  echo "$name $scenario $done_n $(( after - before )) $(( user_after - user_before ))" >> "$work/rows"
  echo "bench: $name $scenario: $done_n requests" >&2
}

# measure_handshakes PID NAME URL: HANDSHAKES connections of one request each (h2load gives each
# of its -c clients one connection; -n = -c makes that one request per connection).
measure_handshakes() {
  local pid=$1 name=$2 url=$3 before after user_before user_after total=0 n out i
  before=$(cpu_ticks "$pid"); user_before=$(user_ticks "$pid")
  for i in $(seq $(( HANDSHAKES / 100 ))); do
    out=$(taskset -c 1 h2load --h1 -c 100 -n 100 "$url" 2>&1) || { echo "bench: h2load failed ($name handshake):" >&2; echo "$out" >&2; exit 1; }
    n=$(awk '/^requests:/ {for (i=1;i<=NF;i++) if ($i=="succeeded,") print $(i-1)}' <<<"$out")
    total=$(( total + ${n:-0} ))
  done
  after=$(cpu_ticks "$pid"); user_after=$(user_ticks "$pid")
  [ "$total" -gt 0 ] || { echo "bench: no successful handshakes ($name)" >&2; exit 1; }
  echo "$name handshake $total $(( after - before )) $(( user_after - user_before ))" >> "$work/rows"
  echo "bench: $name handshake: $total connections" >&2
}

: > "$work/rows"
for name in legate envoy; do
  hport=$(port); cport=$(port); aport=$(port)
  sed -e "s/{https_port}/$hport/g; s/{h2c_port}/$cport/g; s/{admin_port}/$aport/g; s/{upstream_port}/$upstream_port/g" \
      -e "s#{cert}#$work/cert.pem#g; s#{key}#$work/key.pem#g" bench/protocols.yaml > "$work/$name.yaml"
  bin=$LEGATE; [ "$name" = envoy ] && bin=$ENVOY
  taskset -c 0 "$bin" -c "$work/$name.yaml" --concurrency 1 -l error --use-dynamic-base-id >"$work/$name.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_http "http://127.0.0.1:$aport/ready" "$pid" "$name"
  h2load --h1 -c 8 -D 2 "https://127.0.0.1:$hport/" >/dev/null 2>&1 || true   # warm-up
  measure "$pid" "$name" https-h1 -- --h1 -c 32 -D "$DURATION" "https://127.0.0.1:$hport/"
  measure "$pid" "$name" https-h2 -- -c 8 -m 10 -D "$DURATION" "https://127.0.0.1:$hport/"
  measure "$pid" "$name" h2c -- -c 8 -m 10 -D "$DURATION" "http://127.0.0.1:$cport/"
  measure_handshakes "$pid" "$name" "https://127.0.0.1:$hport/"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

{
  echo "# $(date -u +%FT%TZ) DURATION=${DURATION}s h2load (core 1), proxy --concurrency 1 (core 0), nginx upstream"
  echo "# legate $(git rev-parse --short HEAD 2>/dev/null); $("$ENVOY" --version 2>/dev/null | grep -o '1\.[0-9]*\.[0-9]*' | head -1 | sed 's/^/envoy /')"
  python3 - "$tck" "$work/rows" <<'PY'
import sys
tck, rows = int(sys.argv[1]), sys.argv[2]
data = {}
for line in open(rows):
    name, scenario, done, ticks, user_ticks = line.split()
    per = 1e6 / tck / int(done)
    data[(name, scenario)] = (int(ticks) * per, int(user_ticks) * per)
print(f"{'scenario':<10} {'legate µs':>10} {'(user)':>7} {'envoy µs':>10} {'(user)':>7} {'ratio':>7} {'(user)':>7}")
for s in ["https-h1", "https-h2", "h2c", "handshake"]:
    l, e = data.get(("legate", s)), data.get(("envoy", s))
    if l and e and e[0] and e[1]:
        print(f"{s:<10} {l[0]:>10.1f} {l[1]:>7.1f} {e[0]:>10.1f} {e[1]:>7.1f} {l[0] / e[0]:>7.3f} {l[1] / e[1]:>7.3f}")
print("(µs of proxy CPU per request, total and user space; handshake: per new TLS connection with one")
print(" request; the rest of each total is kernel time, mostly the loopback TCP path)")
PY
} | tee bench/results/protocols-latest.txt
