#!/usr/bin/env bash
# The seed's Docker flow with Legate as the front proxy, checked end to end:
#   1. static binaries (crt-static) and FROM-scratch images: frontend-proxy, film-service,
#      rating-service, record-store, prometheus;
#   2. docker-compose up; wait for the admin's /ready and both STRICT_DNS clusters;
#   3. the seed's curl checks (pseudo-JSON POST, ?name= lookups, the rating created through the
#      mesh, HTTPS on 8443 verified against the generated certificate), Prometheus's API;
#   4. scale film-service=5 rating-service=3; the proxy's /clusters must follow (5 and 3 hosts),
#      requests must reach every replica, and the checks must hold again, deterministically;
#   5. docker-compose down -v (always, via trap; KEEP=1 leaves the system running).
# Exits 0 only if every check holds. Every wait is bounded.
#
# Environment: COMPOSE_PROJECT_NAME (default legate-fp-<pid>); FRONT_PROXY_HTTP_PORT,
# FRONT_PROXY_HTTPS_PORT, FRONT_PROXY_ADMIN_PORT, PROMETHEUS_PORT (default: free ports);
# VERIFY_TLS=0 skips the HTTPS listener and its check (for a legate without downstream TLS);
# KEEP=1; BUILD_ONLY=1 (build the binaries and images, then stop); CARGO_TARGET_DIR (default target/static); LEGATE_LTO=1 builds with the workspace's fat
# LTO (default: no LTO, which builds several times faster).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
T_START=$(date +%s.%N)
TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/static}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-legate-fp-$$}
VERIFY_TLS=${VERIFY_TLS:-1}
IMAGES=(frontend-proxy film-service rating-service record-store prometheus)

log() { printf '[verify %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf '[verify] FAIL: %s\n' "$*" >&2; FAILED=1; exit 1; }
PASSED=0 FAILED=0
ok() { PASSED=$((PASSED + 1)); log "ok: $*"; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }
# free_ports N: N distinct TCP ports, free on every address a moment ago, below the kernel's
# ephemeral range (no outgoing connection on the machine can take one as its source port before
# compose publishes it).
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
candidates = list(range(10240, max(low, 20480)))
random.shuffle(candidates)
found = []
for port in candidates:
    with socket.socket() as s:
        try:
            s.bind(("", port))
        except OSError:
            continue
    found.append(port)
    if len(found) == int(sys.argv[1]):
        break
print(*found)
PY
}

if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
read -r port_1 port_2 port_3 port_4 <<< "$(free_ports 4)"
export FRONT_PROXY_HTTP_PORT=${FRONT_PROXY_HTTP_PORT:-$port_1}
export FRONT_PROXY_HTTPS_PORT=${FRONT_PROXY_HTTPS_PORT:-$port_2}
export FRONT_PROXY_ADMIN_PORT=${FRONT_PROXY_ADMIN_PORT:-$port_3}
export PROMETHEUS_PORT=${PROMETHEUS_PORT:-$port_4}
HTTP=http://127.0.0.1:$FRONT_PROXY_HTTP_PORT
ADMIN=http://127.0.0.1:$FRONT_PROXY_ADMIN_PORT
PROM=http://127.0.0.1:$PROMETHEUS_PORT

STAGE=$(mktemp -d /tmp/legate-front-proxy.XXXXXX)
export LEGATE_TLS_DIR=$STAGE/tls
compose() { "${COMPOSE[@]}" -f "$HERE/docker-compose.yaml" --project-directory "$HERE" "$@"; }

started=0
cleanup() {
  local rc=$?
  if [ "$started" = 1 ]; then
    if [ "$rc" != 0 ]; then
      log "failure: last log lines of the system"
      compose logs --no-color --tail=15 2>&1 | tail -80 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
      log "KEEP=1: left running as project $COMPOSE_PROJECT_NAME (proxy $HTTP, admin $ADMIN, prometheus $PROM)"
    else
      compose down -v --remove-orphans -t 5 >/dev/null 2>&1 || log "warning: docker-compose down failed"
    fi
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$STAGE"
  [ "$rc" = 0 ] || FAILED=1
  log "total verify.sh time: $(elapsed "$T_START")s (exit $rc)"
  [ "${BUILD_ONLY:-0}" = 1 ] || echo "front-proxy: $PASSED passed, $FAILED failed"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# ---------------------------------------------------------------- 1. static binaries and images
log "building static binaries into $CARGO_TARGET_DIR"
lto=(env CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16)
[ "${LEGATE_LTO:-0}" = 1 ] && lto=(env)
(cd "$ROOT" && "${lto[@]}" RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --quiet --release --target "$TARGET" -p legate -p legate-demo-services)
BIN=$CARGO_TARGET_DIR/$TARGET/release
mkdir -p "$STAGE/bin" "$STAGE/prometheus"
for b in legate film-service rating-service record-store; do
  [ -x "$BIN/$b" ] || fail "$BIN/$b was not built"
  ldd "$BIN/$b" 2>&1 | grep -qE 'not a dynamic executable|statically linked' || fail "$b is not static: $(ldd "$BIN/$b" 2>&1)"
  file -L "$BIN/$b" | grep -qE 'static(-pie)? linked|statically linked' || fail "$b: $(file "$BIN/$b")"
  cp "$BIN/$b" "$STAGE/bin/$b"
done
log "static: $(cd "$BIN" && for b in legate film-service rating-service record-store; do
  printf '%s (%s) ' "$b" "$(file "$b" | grep -oE 'static(-pie)? linked|statically linked')"; done)"

# Debian's prometheus is dynamically linked against glibc only: copy those libraries.
PROMETHEUS_BIN=${PROMETHEUS_BIN:-/usr/bin/prometheus}
[ -x "$PROMETHEUS_BIN" ] || fail "$PROMETHEUS_BIN missing (apt-get install prometheus; scripts/setup.sh does)"
libs=$(ldd "$PROMETHEUS_BIN" | grep -oE '/[^ ]+' | sort -u)
for lib in $libs; do
  case "$(basename "$lib")" in
    libc.so.6|ld-linux-x86-64.so.2) cp -L "$lib" "$STAGE/prometheus/" ;;
    *) fail "prometheus needs $lib, which docker/prometheus.Dockerfile does not copy" ;;
  esac
done
cp "$PROMETHEUS_BIN" "$STAGE/prometheus/prometheus"
cp -r /usr/share/prometheus/web "$STAGE/prometheus/web"
cp "$HERE/prometheus.yaml" "$STAGE/prometheus.yaml"

if [ "$VERIFY_TLS" = 1 ]; then
  cp "$HERE/envoy.yaml" "$STAGE/envoy.yaml"
else
  # Without downstream TLS in legate: the same config less the 8443 listener.
  sed '/^  - name: front_https/,/^  clusters:/{/^  clusters:/!d}' "$HERE/envoy.yaml" > "$STAGE/envoy.yaml"
  log "VERIFY_TLS=0: the 8443 listener is left out and not checked"
fi
"$HERE/gen-cert.sh" "$LEGATE_TLS_DIR" >/dev/null
# The config as it runs (cert paths pointed at the staged files) must be accepted by legate.
sed "s#/etc/legate/tls#$LEGATE_TLS_DIR#g" "$STAGE/envoy.yaml" > "$STAGE/envoy.validate.yaml"
"$BIN/legate" --mode validate -c "$STAGE/envoy.validate.yaml" >/dev/null 2>"$STAGE/validate.err" \
  || fail "legate rejects the front-proxy config: $(cat "$STAGE/validate.err")"

log "building images FROM scratch"
for img in "${IMAGES[@]}"; do
  docker build -q -t "legate/$img:dev" -f "$HERE/docker/$img.Dockerfile" "$STAGE" >/dev/null 2>"$STAGE/build.err" \
    || fail "docker build of $img failed: $(grep -v -e DEPRECATED -e buildx -e '^ *$' "$STAGE/build.err")"
done
if [ "${BUILD_ONLY:-0}" = 1 ]; then
  log "BUILD_ONLY=1: images ${IMAGES[*]/#/legate/} built (tag :dev)"
  exit 0
fi
declare -A SIZE
for img in "${IMAGES[@]}"; do
  SIZE[$img]=$(docker image inspect -f '{{.Size}}' "legate/$img:dev")
done

# ---------------------------------------------------------------- helpers
# jget JSON EXPR: evaluates the Python expression EXPR over the parsed JSON `j`.
jget() { python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
# req METHOD URL [curl args...]: sets STATUS and BODY.
req() {
  local method=$1 url=$2; shift 2
  local out
  out=$(curl -sS --max-time 10 -o "$STAGE/body" -w '%{http_code}' -X "$method" "$url" "$@") || out=000
  STATUS=$out
  BODY=$(cat "$STAGE/body" 2>/dev/null || true)
}
expect() { # expect DESCRIPTION STATUS PY-EXPR-ON-j
  [ "$STATUS" = "$2" ] || fail "$1: HTTP $STATUS (expected $2): $BODY"
  if [ -n "${3:-}" ]; then
    [ "$(jget "$BODY" "$3" 2>/dev/null)" = True ] || fail "$1: '$3' does not hold for: $BODY"
  fi
  ok "$1"
}
# hosts CLUSTER PORT: the number of hosts the proxy's /clusters lists for CLUSTER.
hosts() { curl -sS --max-time 5 "$ADMIN/clusters" 2>/dev/null | grep -cE "^$1::[0-9.]+:$2::health_flags::" || true; }
# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.5 s until it succeeds.
wait_for() {
  local what=$1 limit=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for $what"
    sleep 0.5
  done
}

# ---------------------------------------------------------------- 2. up and ready
log "docker-compose up (project $COMPOSE_PROJECT_NAME; ports http $FRONT_PROXY_HTTP_PORT https $FRONT_PROXY_HTTPS_PORT admin $FRONT_PROXY_ADMIN_PORT prometheus $PROMETHEUS_PORT)"
T_UP=$(date +%s.%N)
started=1
compose up -d --no-build >/dev/null 2>"$STAGE/up.err" || fail "docker-compose up: $(cat "$STAGE/up.err")"
ready() { [ "$(curl -sS --max-time 2 "$ADMIN/ready" 2>/dev/null)" = LIVE ] && [ "$(hosts film-service-cluster 5000)" -ge 1 ] \
  && [ "$(hosts rating-service-cluster 6000)" -ge 1 ] && curl -fsS --max-time 2 -o /dev/null "$HTTP/films" 2>/dev/null \
  && curl -fsS --max-time 2 -o /dev/null "$HTTP/ratings" 2>/dev/null; }
wait_for "the proxy's /ready and both clusters" 60 ready
READY_SECS=$(elapsed "$T_UP")
log "ready ${READY_SECS}s after docker-compose up"

# ---------------------------------------------------------------- 3. the seed's checks
# seed_checks NAME LANGUAGE: creates the film with the seed's pseudo-JSON body and checks it.
seed_checks() {
  local name=$1 language=$2
  req POST "$HTTP/films" --data "{
    'name': '$name',
    'language': '$language'
  }"
  expect "POST /films '$name' (pseudo-JSON)" 200 "any(f['name'] == '$name' and f['language'] == '$language' for f in j)"
  FILM_ID=$(jget "$BODY" "[f['id'] for f in j if f['name'] == '$name'][0]")
  req GET "$HTTP/films"
  expect "GET /films lists '$name'" 200 "any(f['id'] == '$FILM_ID' for f in j)"
  req GET "$HTTP/films?name=$name"
  expect "GET /films?name=$name" 200 "j['id'] == '$FILM_ID' and j['language'] == '$language'"
  req GET "$HTTP/films/$FILM_ID"
  expect "GET /films/<id>" 200 "j['name'] == '$name'"
  req GET "$HTTP/ratings"
  expect "GET /ratings has the rating film-service created through the mesh" 200 \
    "any(r['id'] == '$FILM_ID' and r['name'] == '$name' and r['rating'] == '5' for r in j)"
  req GET "$HTTP/ratings?name=$name"
  expect "GET /ratings?name=$name" 200 "j['id'] == '$FILM_ID' and j['rating'] == '5'"
  req GET "$HTTP/films?name=NoSuchFilm"
  expect "GET /films?name=NoSuchFilm is 404" 404 "'error' in j"
  if [ "$VERIFY_TLS" = 1 ]; then
    req GET "https://localhost:$FRONT_PROXY_HTTPS_PORT/films?name=$name" --cacert "$LEGATE_TLS_DIR/tls.crt" \
      --resolve "localhost:$FRONT_PROXY_HTTPS_PORT:127.0.0.1"
    expect "HTTPS :8443 /films?name=$name, certificate verified with --cacert" 200 "j['id'] == '$FILM_ID'"
    # A client that does not trust the certificate must be refused by curl (proves TLS is real).
    if curl -sS --max-time 5 -o /dev/null "https://localhost:$FRONT_PROXY_HTTPS_PORT/films" \
        --resolve "localhost:$FRONT_PROXY_HTTPS_PORT:127.0.0.1" 2>/dev/null; then
      fail "HTTPS without --cacert was accepted: the certificate is not the self-signed one"
    fi
    ok "HTTPS without --cacert fails verification (self-signed certificate served)"
  fi
}
log "seed checks, one replica each"
seed_checks Anand English

# Prometheus: the proxy target is up and both clusters' request counters are there.
prom_target_up() {
  local t; t=$(curl -sS --max-time 3 "$PROM/api/v1/targets" 2>/dev/null) || return 1
  [ "$(jget "$t" "any(a['labels'].get('job') == 'frontend-proxy' and a['health'] == 'up' for a in j['data']['activeTargets'])" 2>/dev/null)" = True ]
}
wait_for "Prometheus to scrape frontend-proxy (target up)" 60 prom_target_up
ok "Prometheus /api/v1/targets: frontend-proxy up"
prom_clusters() {
  local q; q=$(curl -sS --max-time 3 "$PROM/api/v1/query?query=envoy_cluster_upstream_rq_total" 2>/dev/null) || return 1
  [ "$(jget "$q" "{'film-service-cluster', 'rating-service-cluster'} <= {float(r['value'][1]) > 0 and r['metric'].get('envoy_cluster_name') for r in j['data']['result']}" 2>/dev/null)" = True ]
}
wait_for "Prometheus to have envoy_cluster_upstream_rq_total of both clusters" 60 prom_clusters
ok "Prometheus /api/v1/query envoy_cluster_upstream_rq_total: film-service-cluster and rating-service-cluster > 0"
req GET "$PROM/graph" -L
[ "$STATUS" = 200 ] && grep -q "<title>Prometheus" "$STAGE/body" || fail "Prometheus web UI /graph: HTTP $STATUS"
ok "Prometheus web UI answers on :$PROMETHEUS_PORT/graph"
# Every proxy metric the Grafana dashboard queries is exported on /stats/prometheus.
metrics=$(curl -fsS --max-time 5 "$ADMIN/stats/prometheus")
for m in $(grep -oE 'envoy_[a-z_]+' "$HERE/grafana/dashboards/front-proxy.json" | grep -v '^envoy_cluster_name$' | sort -u); do
  grep -qE "^$m(\{| )" <<<"$metrics" || fail "the Grafana dashboard queries $m, which /stats/prometheus does not export"
done
ok "the Grafana dashboard's metrics are all exported: $(grep -oE 'envoy_[a-z_]+' "$HERE/grafana/dashboards/front-proxy.json" | grep -v '^envoy_cluster_name$' | sort -u | tr '\n' ' ')"

# ---------------------------------------------------------------- 4. scale
log "scaling: film-service=5 rating-service=3"
T_SCALE=$(date +%s.%N)
compose up -d --no-build --no-recreate --scale film-service=5 --scale rating-service=3 >/dev/null 2>"$STAGE/up.err" \
  || fail "docker-compose scale: $(cat "$STAGE/up.err")"
scaled() { [ "$(hosts film-service-cluster 5000)" = 5 ] && [ "$(hosts rating-service-cluster 6000)" = 3 ]; }
wait_for "/clusters to list 5 film-service and 3 rating-service hosts" 60 scaled
ok "/clusters lists 5 film-service-cluster and 3 rating-service-cluster hosts, $(elapsed "$T_SCALE")s after scaling"

# Spread: round robin must reach every replica (per-host rq_success in /clusters).
for _ in $(seq 1 20); do req GET "$HTTP/films"; [ "$STATUS" = 200 ] || fail "GET /films after scaling: $STATUS $BODY"; done
for _ in $(seq 1 12); do req GET "$HTTP/ratings"; [ "$STATUS" = 200 ] || fail "GET /ratings after scaling: $STATUS $BODY"; done
spread() { # spread CLUSTER PORT N
  local per; per=$(curl -sS --max-time 5 "$ADMIN/clusters" | grep -E "^$1::[0-9.]+:$2::rq_success::" | awk -F'::' '{print $4}')
  [ "$(echo "$per" | grep -c .)" = "$3" ] || fail "$1: expected $3 hosts with rq_success, got: $per"
  echo "$per" | awk '$1 < 1 {bad=1} END {exit bad}' || fail "$1: a replica got no request (rq_success per host: $(tr "\n" " " <<<"$per"))"
  ok "$1 requests spread over all $3 replicas (rq_success per host: $(tr "\n" " " <<<"$per"))"
}
spread film-service-cluster 5000 5
spread rating-service-cluster 6000 3
prom_healthy() {
  local q; q=$(curl -sS --max-time 3 "$PROM/api/v1/query?query=envoy_cluster_membership_healthy" 2>/dev/null) || return 1
  [ "$(jget "$q" "{r['metric'].get('envoy_cluster_name'): r['value'][1] for r in j['data']['result']} == {'film-service-cluster': '5', 'rating-service-cluster': '3'}" 2>/dev/null)" = True ]
}
wait_for "Prometheus to see 5 and 3 healthy hosts (envoy_cluster_membership_healthy)" 60 prom_healthy
ok "Prometheus envoy_cluster_membership_healthy: film-service-cluster 5, rating-service-cluster 3"
# The replicas' own request logs (service name + hostname) agree: every replica served requests.
for svc in film-service:5 rating-service:3; do
  n=$(compose logs --no-color "${svc%%:*}" 2>/dev/null | grep -oE "${svc%%:*} on [^:]+: GET" | sort -u | wc -l)
  [ "$n" = "${svc##*:}" ] || fail "${svc%%:*}: GET requests logged by $n distinct hostnames, expected ${svc##*:}"
  ok "${svc%%:*} logs show GET requests served by ${svc##*:} distinct hostnames"
done

log "seed checks again, scaled"
seed_checks Sholay Hindi
# Determinism: whichever replica answers, every record is there (the shared record-store).
for _ in $(seq 1 15); do
  for name in Anand Sholay; do
    req GET "$HTTP/films?name=$name"; [ "$STATUS" = 200 ] || fail "GET /films?name=$name after scaling: $STATUS $BODY"
  done
  req GET "$HTTP/ratings?name=Anand"; [ "$STATUS" = 200 ] || fail "GET /ratings?name=Anand after scaling: $STATUS $BODY"
  req GET "$HTTP/films"
  [ "$(jget "$BODY" "sorted(f['name'] for f in j) == ['Anand', 'Sholay']")" = True ] || fail "GET /films differs by replica: $BODY"
done
ok "15 rounds of GETs over 5+3 replicas all see both films and ratings (deterministic)"

# ---------------------------------------------------------------- figures
log "figures:"
for img in "${IMAGES[@]}"; do
  printf '  image %-28s %6.1f MB\n' "legate/$img:dev" "$(python3 -c "print(${SIZE[$img]} / 1e6)")"
done
printf '  compose up -> ready: %ss\n' "$READY_SECS"
log "ALL CHECKS PASSED"
