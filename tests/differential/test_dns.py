"""STRICT_DNS through a real DNS server (dnsmasq): both proxies follow record changes.

dnsmasq serves an addn-hosts file on 127.0.0.x; the records are rewritten and dnsmasq gets
SIGHUP (by its PID). Replicas are echo servers on 127.0.0.2/3/4, all on one port.
"""
import time

import pytest

import harness
import upstreams as ups
from harness import show

REPLICA_IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
NAME = "replicas.test"


@pytest.fixture(scope="module")
def dns_setup(make_pair):
    if ups.dnsmasq_binary() is None:
        pytest.skip("dnsmasq not installed (apt-get install dnsmasq)")
    port = ups.free_port(REPLICA_IPS[0])
    replicas = [ups.EchoServer(f"replica-{ip}", host=ip, port=port) for ip in REPLICA_IPS]
    dns = ups.Dnsmasq([(REPLICA_IPS[0], NAME)])
    try:
        assert dns.query(NAME) == [REPLICA_IPS[0]], "dnsmasq does not serve the record (harness check)"
        pair = make_pair(harness.load_template("dns.yaml"),
                         {"dns_address": dns.address, "dns_port": dns.port, "upstream_port": port})
        yield pair, dns, port
    finally:
        dns.close()
        for r in replicas:
            r.close()


def hosts(p):
    """Sorted host addresses of cluster `replicas` in /clusters."""
    return sorted({line.split("::")[1] for line in p.admin("/clusters")[1].splitlines()
                   if line.startswith("replicas::") and "::cx_total::" in line})


def wait_hosts(pair, want, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pair.both(hosts)
        if got == (want, want):
            return got
        time.sleep(0.1)
    return pair.both(hosts)


def reached(p, n=30):
    return {p.get("/dns").upstream()["server"] for _ in range(n)}


def test_dns_follows_record_changes(dns_setup):
    pair, dns, port = dns_setup
    steps = [[REPLICA_IPS[0]], REPLICA_IPS[:2], REPLICA_IPS, [REPLICA_IPS[2]]]
    for i, ips in enumerate(steps):
        if i:
            dns.set_records([(ip, NAME) for ip in ips])
            deadline = time.time() + 5
            while sorted(dns.query(NAME) or []) != sorted(ips) and time.time() < deadline:
                time.sleep(0.05)
        want = sorted(f"{ip}:{port}" for ip in ips)
        e, l = wait_hosts(pair, want)
        assert e == want, show(f"step {i}: Envoy's /clusters hosts (harness check)", e, None)
        assert l == want, show(f"step {i}: /clusters hosts after records {ips}", e, l)
        e, l = pair.both(reached)
        assert e == l == {f"replica-{ip}" for ip in ips}, show(f"step {i}: replicas reached by 30 requests", e, l)
        e, l = pair.both(lambda p: p.stats().get("cluster.replicas.membership_total"))
        assert l == e == len(ips), show(f"step {i}: membership_total", e, l)
