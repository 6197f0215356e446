#!/usr/bin/env bash
# Legate vs Envoy side by side on one bootstrap (bench/front-proxy.yaml): HTTP/1.1 keep-alive GETs
# through each proxy to an nginx upstream. Each proxy runs with --concurrency 1 pinned to core 0;
# wrk (1 thread, CONNS connections, 32 by default) and the upstream nginx run on core 1. Reports
# throughput, proxy CPU µs per request (utime+stime from /proc/PID/stat), p99 latency, idle and
# loaded RSS, and the Legate/Envoy ratios.
#
#   bench/run.sh [--with-nginx] [--with-haproxy]     DURATION=10 (seconds per measured run), ROUNDS=1,
#                                                    CONNS=32 (wrk connections)
#
# --with-nginx / --with-haproxy also measure nginx (proxy_pass + upstream keepalive, one process)
# and haproxy (nbthread 1, http-reuse always) as reverse proxies, for reference.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_NGINX=0
WITH_HAPROXY=0
for arg in "$@"; do
  case $arg in
    --with-nginx) WITH_NGINX=1 ;;
    --with-haproxy) WITH_HAPROXY=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $arg" >&2; exit 2 ;;
  esac
done

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-1}
CONNS=${CONNS:-32}
WARMUP=2
LEGATE=${LEGATE_BIN:-target/release/legate}
ENVOY=${ENVOY_BIN:-.venv/bin/envoy}
NGINX=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
HAPROXY=${HAPROXY_BIN:-$(command -v haproxy || echo /usr/sbin/haproxy)}
. bench/lib.sh
need wrk taskset curl python3 getconf
[ -x "$ENVOY" ] || { echo "bench: Envoy not found at $ENVOY (run scripts/setup.sh)" >&2; exit 1; }
[ -x "$NGINX" ] || { echo "bench: nginx not found at $NGINX" >&2; exit 1; }
if [ "$WITH_HAPROXY" = 1 ] && [ ! -x "$HAPROXY" ]; then
  echo "bench: haproxy not found at $HAPROXY (apt-get install haproxy)" >&2; exit 1
fi
legate_binary

mkdir -p bench/results
bench_init legate-bench
tck=$(getconf CLK_TCK)

# --- upstream: nginx returning a fixed 200 "hello" ---------------------------------------------
upstream_port=$(port)
nginx_conf() {  # nginx_conf DIR SERVER_BLOCK [EXTRA_MAIN]
  mkdir -p "$1/logs"
  cat <<NGINX
worker_processes 1;
daemon off;
${3:-}
pid $1/nginx.pid;
error_log $1/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/body; proxy_temp_path $1/proxy; fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
  $2
}
NGINX
}
nginx_conf "$work/upstream" "server { listen 127.0.0.1:$upstream_port; location / { return 200 \"hello\"; } }" \
  > "$work/upstream.conf"
taskset -c 1 "$NGINX" -p "$work/upstream" -c "$work/upstream.conf" >"$work/upstream.log" 2>&1 &
upstream_pid=$!; pids+=("$upstream_pid")
wait_http "http://127.0.0.1:$upstream_port/" "$upstream_pid" upstream

# --- one measurement ----------------------------------------------------------------------------
# run_proxy NAME ROUND: appends "name rps cpu_us p99 idle_kb load_kb non2xx sockerr" to $work/rows
run_proxy() {
  local name=$1 round=$2 lport aport pid cmd ready_url
  lport=$(port); aport=$(port)
  case $name in
    legate|envoy)
      sed -e "s/{listener_port}/$lport/g; s/{admin_port}/$aport/g; s/{upstream_port}/$upstream_port/g" \
        bench/front-proxy.yaml > "$work/$name.yaml"
      ready_url="http://127.0.0.1:$aport/ready" ;;
    nginx)
      nginx_conf "$work/nginx-proxy" "upstream backend { server 127.0.0.1:$upstream_port; keepalive 64; }
  server { listen 127.0.0.1:$lport; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" \
        "master_process off;" > "$work/nginx-proxy.conf"
      ready_url="http://127.0.0.1:$lport/" ;;
    haproxy)
      cat > "$work/haproxy.cfg" <<HAPROXY
global
  nbthread 1
  pidfile $work/haproxy.pid
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend bench
  bind 127.0.0.1:$lport
  default_backend upstream
backend upstream
  server nginx 127.0.0.1:$upstream_port
HAPROXY
      ready_url="http://127.0.0.1:$lport/" ;;
  esac
  case $name in
    legate) cmd=("$LEGATE" -c "$work/$name.yaml" --concurrency 1 -l error --use-dynamic-base-id) ;;
    envoy)  cmd=("$ENVOY" -c "$work/$name.yaml" --concurrency 1 -l error --use-dynamic-base-id) ;;
    nginx)  cmd=("$NGINX" -p "$work/nginx-proxy" -c "$work/nginx-proxy.conf") ;;  # single process
    haproxy) cmd=("$HAPROXY" -db -f "$work/haproxy.cfg") ;;  # foreground, no master process
  esac
  taskset -c 0 "${cmd[@]}" >"$work/$name.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_http "$ready_url" "$pid" "$name"
  sleep 1
  local idle_rss; idle_rss=$(rss_kb "$pid")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$lport/" > "$work/$name.warmup" 2>&1

  local before after user_before user_after out load_rss wrk_pid
  before=$(cpu_ticks "$pid"); user_before=$(user_ticks "$pid")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$lport/" > "$work/$name.wrk" 2>&1 &
  wrk_pid=$!; pids+=("$wrk_pid")
  sleep "$(awk -v d="$DURATION" 'BEGIN {print d / 2}')"
  load_rss=$(rss_kb "$pid")   # RSS under load: sampled half-way through the measured run
  wait "$wrk_pid" || { echo "bench: wrk failed against $name" >&2; cat "$work/$name.wrk" >&2; exit 1; }
  forget_pid "$wrk_pid"
  after=$(cpu_ticks "$pid"); user_after=$(user_ticks "$pid")
  out=$(cat "$work/$name.wrk")
  kill "$pid"; wait "$pid" 2>/dev/null || true; forget_pid "$pid"
  printf '%s\n' "$out" > "bench/results/wrk-$name-$round.txt"

  local reqs rps p99 non2xx sockerr warm_non2xx
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  sockerr=$(grep -o 'Socket errors:.*' <<<"$out" | tr -d ' ' || true); sockerr=${sockerr:-none}
  warm_non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$work/$name.warmup"); warm_non2xx=${warm_non2xx:-0}
  if [ -z "$reqs" ] || [ "$reqs" = 0 ]; then
    echo "bench: $name: wrk completed no requests:" >&2; printf '%s\n' "$out" >&2; exit 1
  fi
  [ "$non2xx" = 0 ] || echo "bench: WARNING $name answered $non2xx non-2xx/3xx responses (of $reqs)" >&2
  [ "$warm_non2xx" = 0 ] || echo "bench: WARNING $name answered $warm_non2xx non-2xx/3xx during warm-up" >&2
  [ "$sockerr" = none ] || echo "bench: WARNING $name: $sockerr" >&2
  echo "$name $rps $(( after - before )) $tck $reqs $p99 $idle_rss $load_rss $non2xx $sockerr $(( user_after - user_before ))" >> "$work/rows"
  echo "bench: $name round $round done: $rps req/s" >&2
}

proxies=(legate envoy)
[ "$WITH_NGINX" = 1 ] && proxies+=(nginx)
[ "$WITH_HAPROXY" = 1 ] && proxies+=(haproxy)
: > "$work/rows"
for round in $(seq "$ROUNDS"); do
  for p in "${proxies[@]}"; do run_proxy "$p" "$round"; done
done

{
  echo "# $(date -u +%FT%TZ) DURATION=${DURATION}s ROUNDS=$ROUNDS wrk -t1 -c$CONNS (core 1), proxy --concurrency 1 (core 0)"
  echo "# legate $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo +dirty); $("$ENVOY" --version 2>/dev/null | grep -o '1\.[0-9]*\.[0-9]*' | head -1 | sed 's/^/envoy /')"
  python3 bench/summarize.py < "$work/rows"
} | tee bench/results/latest.txt
