"""The harness itself: a proxy whose picked port is taken before it binds it starts again on
fresh ports (a CI run once lost a listener port to another socket that way)."""
import socket

import pytest

import harness
import upstreams as ups
from conftest import check_binaries


@pytest.mark.parametrize("kind", ["envoy", "legate"])
def test_a_proxy_whose_port_was_taken_starts_again_on_fresh_ports(monkeypatch, values, kind):
    check_binaries()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ups.free_port()))
        taken.listen(1)
        lost = taken.getsockname()[1]
        picks = [lost]  # the first pick, the listener's port, is the taken one
        real = harness.free_port
        monkeypatch.setattr(harness, "free_port", lambda: picks.pop() if picks else real())
        proxy = harness.Proxy(kind, harness.load_template("front_proxy.yaml"), values)
        try:
            assert not picks and proxy.listener_port != lost
            assert proxy.admin("/ready") == (200, "LIVE\n")
        finally:
            proxy.close()


def test_a_proxy_that_fails_otherwise_is_not_started_again(monkeypatch, values):
    check_binaries()
    starts = []
    real = harness.Proxy._start
    monkeypatch.setattr(harness.Proxy, "_start", lambda self, *a: (starts.append(1), real(self, *a)))
    with pytest.raises(RuntimeError, match="exited with"):
        harness.Proxy("legate", harness.load_template("front_proxy.yaml") + "\nno_such_field: 1\n", values)
    assert len(starts) == 1
