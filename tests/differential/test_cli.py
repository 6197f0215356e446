"""Command line: --mode validate accepts and refuses the same configs, with the same exit codes."""
import os
import subprocess
import tempfile

import pytest

import harness
from conftest import check_binaries
from harness import show


def validate(binary, text, extra=()):
    fd, path = tempfile.mkstemp(suffix=".yaml", prefix="diff-validate-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        r = subprocess.run([binary, "--mode", "validate", "-c", path, "--use-dynamic-base-id", "-l", "error", *extra],
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace")
    finally:
        os.unlink(path)


GOOD = harness.render(harness.load_template("front_proxy.yaml"), {
    "listener_port": 10000, "admin_port": 10001, "films_port": 10002, "ratings_port": 10003,
    "closed_port": 10004, "slow_port": 10005})
BAD = {
    "unknown-field": GOOD.replace("stat_prefix: ingress_http", "stat_prefix: ingress_http\n          no_such_field: 1"),
    "route-to-unknown-cluster": GOOD.replace("route: {cluster: ratings}", "route: {cluster: nope}", 1),
    "bad-yaml": "static_resources: [\n",
}


def test_validate_good_config():
    check_binaries()
    (ec, eo), (lc, lo) = validate(harness.ENVOY_BIN, GOOD), validate(harness.LEGATE_BIN, GOOD)
    assert ec == 0, show("Envoy (harness check)", eo[-500:], None)
    assert lc == ec, show("exit code", (ec, eo[-300:]), (lc, lo[-300:]))
    assert "OK" in lo, show("validate output", eo[-300:], lo[-300:])


@pytest.mark.parametrize("name", sorted(BAD))
def test_validate_bad_config(name):
    check_binaries()
    (ec, eo), (lc, lo) = validate(harness.ENVOY_BIN, BAD[name]), validate(harness.LEGATE_BIN, BAD[name])
    assert ec != 0, show("Envoy accepted it (harness check)", eo[-500:], None)
    assert lc == ec, show("exit code", (ec, eo[-300:]), (lc, lo[-300:]))


CONFIG_YAML = {
    # Repeated fields merge by appending: one more cluster.
    "adds-a-cluster": ("static_resources: {clusters: [{name: extra, connect_timeout: 1s, "
                       "load_assignment: {cluster_name: extra, endpoints: []}}]}", True),
    # Scalars are replaced.
    "replaces-admin-port": ("admin: {address: {socket_address: {address: 127.0.0.1, port_value: 10099}}}", True),
    # A duplicate cluster name is an error.
    "duplicate-cluster": ("static_resources: {clusters: [{name: films, connect_timeout: 1s}]}", False),
    "unknown-field": ("admin: {no_such_field: 1}", False),
}


@pytest.mark.parametrize("name", sorted(CONFIG_YAML))
def test_validate_with_config_yaml(name):
    check_binaries()
    text, accepted = CONFIG_YAML[name]
    (ec, eo), (lc, lo) = (validate(b, GOOD, ["--config-yaml", text]) for b in (harness.ENVOY_BIN, harness.LEGATE_BIN))
    assert (ec == 0) == accepted, show("Envoy (harness check)", (ec, eo[-500:]), None)
    assert lc == ec, show("exit code", (ec, eo[-300:]), (lc, lo[-300:]))
