"""Differences from Envoy 1.40 that the project has decided to accept (README.md, "Known behaviour
differences from Envoy 1.40"). Keys are "<test file>::<test name with parameters>"; each such test
is marked xfail(strict=True) by conftest.py, so it fails (XPASS) as soon as Legate matches Envoy,
and the entry must then be removed. DIFF_STRICT=1 ignores this list.

Only differences the README documents belong here; anything else that differs is a bug to fix
(or a decision to document in the README first).
"""

_CX_POOLS = ("track_remaining publishes no remaining_cx_pools gauge: Legate refuses "
             "max_connection_pools and does not count connection pools")

KNOWN_DIFFERENCES = {
    "test_circuit_breakers.py::test_track_remaining_gauge_names": _CX_POOLS,
}
