"""Fixtures: real Envoy and Legate side by side on the same config and upstreams."""
import os
import socket

import pytest

import harness

CONFIG = open(os.path.join(os.path.dirname(__file__), "front_proxy.yaml")).read()


@pytest.fixture(scope="module")
def pair():
    if not os.access(harness.ENVOY_BIN, os.X_OK):
        pytest.skip(f"Envoy not installed at {harness.ENVOY_BIN} (run scripts/setup.sh)")
    assert os.access(harness.LEGATE_BIN, os.X_OK), f"Legate binary missing: {harness.LEGATE_BIN}"
    films, ratings = harness.EchoServer("films"), harness.EchoServer("ratings")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    ports = dict(films_port=films.port, ratings_port=ratings.port, closed_port=closed_port)
    envoy = harness.Proxy("envoy", CONFIG, **ports)
    legate = harness.Proxy("legate", CONFIG, **ports)
    yield envoy, legate
    envoy.close()
    legate.close()
    films.close()
    ratings.close()
