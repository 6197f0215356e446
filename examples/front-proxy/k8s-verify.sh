#!/usr/bin/env bash
# The seed's Kubernetes flow with Legate as the front proxy: builds the FROM-scratch images
# (BUILD_ONLY=1 ./verify.sh), loads them into the cluster (kind or minikube, when they are the
# current context), creates the TLS Secret from a fresh self-signed certificate, applies
# kubernetes-deployment.yaml, waits for the rollouts, port-forwards svc/frontend-proxy and runs the
# seed's curl checks over HTTP and HTTPS. Needs kubectl and a cluster (not available in CI here;
# test_k8s_manifests.py checks the manifest statically). NAMESPACE (default legate-front-proxy)
# is deleted at the end unless KEEP=1.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
NS=${NAMESPACE:-legate-front-proxy}
K=(kubectl -n "$NS")
WORK=$(mktemp -d /tmp/legate-k8s.XXXXXX)
PF_PID=

log() { printf '[k8s-verify %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf '[k8s-verify] FAIL: %s\n' "$*" >&2; exit 1; }
cleanup() {
  [ -n "$PF_PID" ] && kill "$PF_PID" 2>/dev/null || true
  if [ "${KEEP:-0}" != 1 ]; then kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

kubectl version --request-timeout=10s >/dev/null || fail "no reachable Kubernetes cluster (kubectl version)"

log "building images"
BUILD_ONLY=1 "$HERE/verify.sh"
IMAGES=(frontend-proxy film-service rating-service record-store prometheus)
ctx=$(kubectl config current-context)
for img in "${IMAGES[@]}"; do
  case "$ctx" in
    kind-*) kind load docker-image "legate/$img:dev" --name "${ctx#kind-}" ;;
    minikube) minikube image load "legate/$img:dev" ;;
    *) log "context $ctx: make sure the node can see legate/$img:dev (imagePullPolicy IfNotPresent)" ;;
  esac
done

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
"$HERE/gen-cert.sh" "$WORK/tls" >/dev/null
kubectl create secret tls frontend-proxy-tls --cert="$WORK/tls/tls.crt" --key="$WORK/tls/tls.key" \
  -n "$NS" --dry-run=client -o yaml | kubectl apply -f -
"${K[@]}" apply -f "$HERE/kubernetes-deployment.yaml"
for d in record-store film-service rating-service frontend-proxy prometheus; do
  "${K[@]}" rollout status "deployment/$d-deployment" --timeout=180s
done

"${K[@]}" port-forward svc/frontend-proxy 18080:8080 18443:8443 19901:9901 >"$WORK/pf.log" 2>&1 &
PF_PID=$!
for _ in $(seq 1 60); do curl -fsS --max-time 2 http://127.0.0.1:19901/ready >/dev/null 2>&1 && break; sleep 0.5; done
[ "$(curl -sS --max-time 2 http://127.0.0.1:19901/ready)" = LIVE ] || fail "proxy admin /ready via port-forward"

jcheck() { python3 -c 'import json, sys; j = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" \
  || fail "$3: '$2' does not hold for: $1"; log "ok: $3"; }

body=$(curl -fsS --max-time 10 -X POST http://127.0.0.1:18080/films --data "{
    'name': 'Anand',
    'language': 'English'
  }")
jcheck "$body" "any(f['name'] == 'Anand' and f['language'] == 'English' for f in j)" "POST /films (pseudo-JSON)"
id=$(python3 -c 'import json, sys; print([f["id"] for f in json.loads(sys.argv[1]) if f["name"] == "Anand"][0])' "$body")
for _ in 1 2 3 4; do  # several times: any replica must answer the same
  jcheck "$(curl -fsS --max-time 10 'http://127.0.0.1:18080/films?name=Anand')" "j['id'] == '$id'" "GET /films?name=Anand"
  jcheck "$(curl -fsS --max-time 10 http://127.0.0.1:18080/ratings)" \
    "any(r['id'] == '$id' and r['rating'] == '5' for r in j)" "GET /ratings has the rating created through the mesh"
done
jcheck "$(curl -fsS --max-time 10 --cacert "$WORK/tls/tls.crt" --resolve localhost:18443:127.0.0.1 \
  'https://localhost:18443/films?name=Anand')" "j['id'] == '$id'" "HTTPS /films?name=Anand (--cacert)"
hosts=$(curl -fsS --max-time 5 http://127.0.0.1:19901/clusters | grep -cE '^film-service-cluster::[0-9.]+:5000::health_flags::' || true)
want=$("${K[@]}" get deployment film-service-deployment -o jsonpath='{.spec.replicas}')
[ "$hosts" = "$want" ] || fail "/clusters lists $hosts film-service hosts, the Deployment has $want replicas"
log "ok: /clusters lists the $want film-service pods (headless Service + STRICT_DNS)"
log "ALL CHECKS PASSED"
