#!/usr/bin/env bash
# Resilience soak test, run on demand (not part of scripts/test.sh). Legate (bench/soak.yaml) in
# front of one STATIC cluster of three upstreams (bench/soak.py upstream: small asyncio HTTP/1.1
# keep-alive servers on 127.0.0.1). The route retries connect-failure,reset,5xx up to 3 times on
# other hosts (previous_hosts); the cluster has HTTP health checks every 0.5 s and outlier
# detection. After a WARMUP-second wrk run, wrk keeps CONNECTIONS keep-alive connections busy for
# DURATION seconds while the script SIGKILLs one upstream every KILL_EVERY seconds (in turn
# u1, u2, u3, ...) and restarts it on the same port DOWN seconds later.
#
# Pass/fail (exit status 1 on failure, for Legate):
#   - every request answered 2xx: wrk's non-2xx count and socket errors are 0 (with two of three
#     hosts always up, 3 retries on other hosts save any request the killed host drops);
#     otherwise the access log lines of the failed requests (status, flags, upstream host, time)
#     are printed next to the kill/restart times;
#   - memory stays flat: VmRSS sampled every SAMPLE_EVERY seconds; the last quarter's max may
#     exceed the first quarter's max by at most max(RSS_BOUND_PCT % = 25 %, RSS_BOUND_MIB = 4 MiB).
#     Legate's RSS moves by under 1 MiB over a 120 s run (allocator arenas, connection buffers);
#     4 MiB is 4x that noise, and 25 % is for bigger processes (Envoy's ~66 MiB). Between the
#     first and last quarters of a 120 s run at ~10k req/s, 4 MiB is ~5 bytes per request or
#     ~170 KiB per kill (24 kills): any real leak on these paths shows.
# Also printed: RSS first/max/last, req/s, latency, and the cluster's retry, health check and
# outlier detection counters from admin /stats.
#
#   bench/soak.sh [--with-envoy]    DURATION=120 (s of load with kills), WARMUP=5, CONNECTIONS=8,
#                                   KILL_EVERY=5, DOWN=2, SAMPLE_EVERY=2, CONCURRENCY=2
#
# --with-envoy runs the same soak against real Envoy (ENVOY_BIN, default .venv/bin/envoy) on the
# same config and prints the figures side by side (the exit status still judges Legate only).
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_ENVOY=0
for arg in "$@"; do
  case $arg in
    --with-envoy) WITH_ENVOY=1 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "soak: unknown argument $arg" >&2; exit 2 ;;
  esac
done

DURATION=${DURATION:-120}
WARMUP=${WARMUP:-5}
CONNECTIONS=${CONNECTIONS:-8}
KILL_EVERY=${KILL_EVERY:-5}
DOWN=${DOWN:-2}
SAMPLE_EVERY=${SAMPLE_EVERY:-2}
CONCURRENCY=${CONCURRENCY:-2}
RSS_BOUND_PCT=${RSS_BOUND_PCT:-25}
RSS_BOUND_MIB=${RSS_BOUND_MIB:-4}
LEGATE=${LEGATE_BIN:-target/release/legate}
ENVOY=${ENVOY_BIN:-.venv/bin/envoy}
. bench/lib.sh
need wrk curl python3
[ "$DOWN" -lt "$KILL_EVERY" ] || { echo "soak: DOWN must be less than KILL_EVERY" >&2; exit 2; }
if [ "$WITH_ENVOY" = 1 ] && [ ! -x "$ENVOY" ]; then
  echo "soak: Envoy not found at $ENVOY (run scripts/setup.sh)" >&2; exit 1
fi
legate_binary

mkdir -p bench/results
bench_init legate-soak
now() { date -u +%FT%T.%3NZ; }
stat_value() { curl -sf "http://127.0.0.1:$1/stats" | awk -v k="$2:" '$1 == k {print $2}'; }

# The upstreams: u1..u3 on up_ports[i], running as up_pids[i].
up_ports=() up_pids=()
start_upstream() {  # start_upstream INDEX
  python3 bench/soak.py upstream "${up_ports[$1]}" "u$(( $1 + 1 ))" >>"$work/u$(( $1 + 1 )).log" 2>&1 &
  up_pids[$1]=$!; pids+=("$!")
}
kill_upstream() {  # kill_upstream INDEX
  local p=${up_pids[$1]}
  if ! kill -0 "$p" 2>/dev/null; then
    echo "$(now) u$(( $1 + 1 )) was not running (failed to restart? log: $(tail -1 "$work/u$(( $1 + 1 )).log"))" >> "$kills_log"
  fi
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  forget_pid "$p"
}

# soak NAME BIN: one full run against one proxy.
soak() {
  local name=$1 bin=$2 lport aport pid i
  lport=$(port); aport=$(port)
  up_ports=("$(port)" "$(port)" "$(port)")
  kills_log=$work/$name.kills; : > "$kills_log"
  for i in 0 1 2; do
    start_upstream "$i"
    wait_http "http://127.0.0.1:${up_ports[$i]}/healthz" "${up_pids[$i]}" "u$(( i + 1 ))"
  done
  sed -e "s/{listener_port}/$lport/g; s/{admin_port}/$aport/g; s#{access_log}#$work/$name.access.log#g" \
      -e "s/{u1_port}/${up_ports[0]}/g; s/{u2_port}/${up_ports[1]}/g; s/{u3_port}/${up_ports[2]}/g" \
      bench/soak.yaml > "$work/$name.yaml"
  "$bin" --mode validate -c "$work/$name.yaml" --use-dynamic-base-id >"$work/$name.validate" 2>&1 ||
    { echo "soak: $name refuses the config:" >&2; cat "$work/$name.validate" >&2; exit 1; }
  "$bin" -c "$work/$name.yaml" --concurrency "$CONCURRENCY" -l error --use-dynamic-base-id >"$work/$name.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_http "http://127.0.0.1:$aport/ready" "$pid" "$name"
  for i in $(seq 100); do   # hosts start unhealthy until their first health check passes
    [ "$(stat_value "$aport" cluster.backend.membership_healthy)" = 3 ] && break
    sleep 0.1
  done
  [ "$(stat_value "$aport" cluster.backend.membership_healthy)" = 3 ] ||
    { echo "soak: $name: the three upstreams are not all healthy after 10 s" >&2; exit 1; }

  local url="http://127.0.0.1:$lport/"
  wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 5s "$url" > "$work/$name.warmup" 2>&1 ||
    { echo "soak: wrk warm-up failed against $name:" >&2; cat "$work/$name.warmup" >&2; exit 1; }
  if grep -q 'Non-2xx\|Socket errors' "$work/$name.warmup"; then
    echo "soak: WARNING $name failed requests during the warm-up (no kills yet):" >&2
    grep 'Non-2xx\|Socket errors' "$work/$name.warmup" >&2
  fi

  # RSS sampler, then the load, then the kill loop in this shell until wrk is done.
  ( while kill -0 "$pid" 2>/dev/null; do echo "$(date +%s) $(rss_kb "$pid")"; sleep "$SAMPLE_EVERY"; done ) > "$work/$name.rss" &
  local sampler=$!; pids+=("$sampler")
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s --latency "$url" > "$work/$name.wrk" 2>&1 &
  local wrk_pid=$!; pids+=("$wrk_pid")
  echo "soak: $name: ${DURATION}s of load, killing an upstream every ${KILL_EVERY}s for ${DOWN}s" >&2
  i=0
  while sleep $(( KILL_EVERY - DOWN )); kill -0 "$wrk_pid" 2>/dev/null; do
    kill_upstream "$i"
    echo "$(now) kill  u$(( i + 1 )) 127.0.0.1:${up_ports[$i]}" >> "$kills_log"
    sleep "$DOWN"
    start_upstream "$i"
    echo "$(now) start u$(( i + 1 )) 127.0.0.1:${up_ports[$i]}" >> "$kills_log"
    i=$(( (i + 1) % 3 ))
  done
  wait "$wrk_pid" || { echo "soak: wrk failed against $name:" >&2; cat "$work/$name.wrk" >&2; exit 1; }
  forget_pid "$wrk_pid"
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; forget_pid "$sampler"
  curl -sf "http://127.0.0.1:$aport/stats" > "$work/$name.stats" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true; forget_pid "$pid"
  for i in 0 1 2; do kill_upstream "$i"; done
  cp "$work/$name.wrk" "bench/results/soak-wrk-$name.txt"
  echo "soak: $name done" >&2
}

names=(legate)
soak legate "$LEGATE"
if [ "$WITH_ENVOY" = 1 ]; then names+=(envoy); soak envoy "$ENVOY"; fi

status=0
{
  echo "# $(date -u +%FT%TZ) soak DURATION=${DURATION}s wrk -t1 -c$CONNECTIONS, proxy --concurrency $CONCURRENCY," \
    "one of 3 upstreams SIGKILLed every ${KILL_EVERY}s for ${DOWN}s"
  echo "# legate $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo +dirty)$(
    [ "$WITH_ENVOY" = 1 ] && "$ENVOY" --version 2>/dev/null | grep -o '1\.[0-9]*\.[0-9]*' | head -1 | sed 's/^/; envoy /')"
  python3 bench/soak.py report "$RSS_BOUND_PCT" "$RSS_BOUND_MIB" "$work" "${names[@]}"
} | tee bench/results/soak-latest.txt || status=$?
exit "$status"
