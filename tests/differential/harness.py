"""Runs one Envoy bootstrap template through real Envoy 1.40 and through Legate, side by side.

Binaries: ENVOY_BIN (default .venv/bin/envoy) and LEGATE_BIN (default target/release/legate if
present, else target/debug/legate). Every process is started here and stopped by its own PID.

Templates are Envoy v3 YAML with `{name}` placeholders (a brace, lowercase identifier, brace);
YAML flow mappings such as `{address: 127.0.0.1}` are left alone. `{listener_port}` and
`{admin_port}` are chosen per proxy; every other placeholder comes from the caller.
"""
import contextlib
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from upstreams import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def _default_legate():
    release = os.path.join(ROOT, "target/release/legate")
    return release if os.path.exists(release) else os.path.join(ROOT, "target/debug/legate")


LEGATE_BIN = os.environ.get("LEGATE_BIN") or _default_legate()
ENVOY_BIN = os.environ.get("ENVOY_BIN") or os.path.join(ROOT, ".venv/bin/envoy")

READY_TIMEOUT = 15  # seconds for admin /ready to say LIVE and the listener to accept
IO_TIMEOUT = 10  # seconds; default for every downstream socket
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def load_template(name):
    """Text of tests/differential/configs/<name>."""
    with open(os.path.join(CONFIGS, name)) as f:
        return f.read()


def render(template, values):
    """Substitutes `{name}` placeholders; an unknown placeholder is an error, not a silent miss."""
    def sub(m):
        if m.group(1) not in values:
            raise KeyError(f"template placeholder {{{m.group(1)}}} has no value")
        return str(values[m.group(1)])
    return PLACEHOLDER.sub(sub, template)


class Response:
    """One HTTP/1.x response as read off the wire."""

    def __init__(self, version, status, reason, headers, body, interim):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers  # [(lowercase name, value)] in wire order
        self.body = body
        self.interim = interim  # statuses of 1xx responses seen before this one

    def header(self, name):
        """First value of header `name` (case-insensitive), or None."""
        return next((v for k, v in self.headers if k == name.lower()), None)

    def header_names(self):
        return sorted({k for k, _ in self.headers})

    def json(self):
        import json
        return json.loads(self.body)

    def upstream(self):
        """The echo server's record of the request, or None for a local reply."""
        if self.header("x-echo-server") and self.header("content-type") == "application/json":
            return self.json()
        return None

    def __repr__(self):
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return f"<{self.status} {dict(self.headers)} {body!r}>"


class Connection:
    """A raw HTTP/1.1 client connection to a proxy's listener (bytes in, parsed responses out)."""

    def __init__(self, port, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise EOFError("connection closed by the proxy")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, method="GET"):
        """Reads one final response, collecting the statuses of 1xx ones before it."""
        interim = []
        while True:
            status_line = self._line().decode("latin-1")
            version, status, reason = (status_line.split(" ", 2) + [""])[:3]
            headers = []
            while True:
                line = self._line()
                if not line:
                    break
                k, _, v = line.decode("latin-1").partition(":")
                headers.append((k.strip().lower(), v.strip()))
            # 101 ends the HTTP exchange (the connection switches protocols): it is final here.
            if 100 <= int(status) < 200 and int(status) != 101:
                interim.append(int(status))
                continue
            break
        hmap = dict(headers)
        status = int(status)
        if method == "HEAD" or status in (101, 204, 304):
            body = b""
        elif "chunked" in hmap.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                parts.append(self._exactly(size))
                self._line()
            body = b"".join(parts)
        elif "content-length" in hmap:
            body = self._exactly(int(hmap["content-length"]))
        else:
            body = self.read_to_eof()
        return Response(version, status, reason, headers, body, interim)

    def read_to_eof(self):
        with contextlib.suppress(EOFError, ConnectionResetError):
            while True:
                self._fill()
        data, self.buf = self.buf, b""
        return data

    def is_closed(self, timeout=3.0):
        """True when the peer closes (EOF or reset) within `timeout` and sent nothing more.

        Envoy half-closes after a `connection: close` response and closes fully once its
        delayed_close_timeout (1 s) passes, so `timeout` must stay above that."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(1)
            if chunk:
                self.buf += chunk
                return False
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def request_bytes(method, path, host="example.com", headers=(), body=b"", version="HTTP/1.1", close=True):
    """Serialises a request; `headers` are (name, value) pairs sent verbatim, in order."""
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    names = {k.lower() for k, _ in headers}
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"content-length: {len(body)}")
    if close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Proxy:
    """One proxy process (real Envoy or Legate) serving a rendered bootstrap template."""

    # Starts with fresh ports when a port picked free was taken before the proxy bound it.
    BIND_ATTEMPTS = 3

    def __init__(self, kind, template, values, extra_args=()):
        self.kind = kind
        self.binary = ENVOY_BIN if kind == "envoy" else LEGATE_BIN
        for attempt in range(1, self.BIND_ATTEMPTS + 1):
            self.proc = self.log = self.config_path = None
            try:
                self._start(template, values, extra_args)
                return
            except Exception as e:
                lost_port = self.proc is not None and isinstance(e, RuntimeError) \
                    and "Address already in use" in self.log_tail()
                self.close()
                if not lost_port or attempt == self.BIND_ATTEMPTS:
                    raise

    def _start(self, template, values, extra_args):
        self.listener_port = free_port()
        self.admin_port = free_port()
        self.config = render(template, dict(values, listener_port=self.listener_port, admin_port=self.admin_port))
        fd, self.config_path = tempfile.mkstemp(suffix=".yaml", prefix=f"diff-{self.kind}-")
        with os.fdopen(fd, "w") as f:
            f.write(self.config)
        args = [self.binary, "-c", self.config_path, "--concurrency", "1", "-l", "warning",
                "--use-dynamic-base-id", *extra_args]
        # Logs go to a file, never a pipe: a chatty proxy must not block on a full pipe.
        self.log = tempfile.TemporaryFile(prefix=f"diff-{self.kind}-log-")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.pid = self.proc.pid
        self._wait_ready(READY_TIMEOUT)

    @property
    def listener_stat(self):
        """The listener's stat scope, e.g. listener.127.0.0.1_PORT."""
        return f"listener.127.0.0.1_{self.listener_port}"

    def log_tail(self, n=4000):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-n:]

    def _wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} ({self.binary}) exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, body = self.admin("/ready", timeout=1)
                if status == 200 and body.strip() == "LIVE":
                    socket.create_connection(("127.0.0.1", self.listener_port), timeout=1).close()
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} (pid {self.pid}) not LIVE within {timeout}s:\n{self.log_tail()}")

    def admin(self, path, method="GET", timeout=IO_TIMEOUT):
        """(status, body text) of an admin request."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stats(self):
        """Counters and gauges of /stats as {name: int} (histograms left out)."""
        out = {}
        for line in self.admin("/stats")[1].splitlines():
            name, _, value = line.partition(": ")
            if value.isdigit():
                out[name] = int(value)
        return out

    def connect(self, timeout=IO_TIMEOUT):
        return Connection(self.listener_port, timeout)

    def raw(self, data, method="GET", timeout=IO_TIMEOUT):
        """Sends raw bytes on a new connection and reads one response."""
        with self.connect(timeout) as c:
            c.send(data)
            return c.read_response(method)

    def request(self, method, path, host="example.com", headers=(), body=b"", timeout=IO_TIMEOUT):
        """One request on its own connection (connection: close)."""
        return self.raw(request_bytes(method, path, host, headers, body), method, timeout)

    def get(self, path, host="example.com", headers=()):
        return self.request("GET", path, host, headers)

    def close(self):
        """Stops exactly the process this object started (by its PID), then removes its files
        (of a start that failed part-way, those it made)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log is not None:
            self.log.close()
        if self.config_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config_path)


class Pair:
    """Envoy and Legate running the same template with the same upstreams."""

    def __init__(self, template, values, extra_args=()):
        self.envoy = self.legate = None
        try:
            self.envoy = Proxy("envoy", template, values, extra_args)
            self.legate = Proxy("legate", template, values, extra_args)
        except Exception:
            self.close()
            raise

    def __iter__(self):
        return iter((self.envoy, self.legate))

    def both(self, fn):
        """(fn(envoy), fn(legate))."""
        return fn(self.envoy), fn(self.legate)

    def close(self):
        for p in (self.legate, self.envoy):
            if p is not None:
                p.close()


def settled_stats(p, watched, busy):
    """/stats once the `busy` gauges read 0 and nothing under the `watched` prefixes has changed
    for 100 ms (an upstream connection may close just after its stream ends)."""
    deadline = time.time() + 5
    while time.time() < deadline:
        s = p.stats()
        if not any(s.get(k) for k in busy):
            time.sleep(0.1)
            again = p.stats()
            if all(again.get(k) == v for k, v in s.items() if k.startswith(watched)):
                return s
        time.sleep(0.05)
    return p.stats()


def counted(p, action, watched, busy):
    """The counters and gauges under the `watched` prefixes that `action(p)` changed, each
    measured once settled (see settled_stats); bytes, times and membership are left out, as they
    differ between the proxies by design, and so is watermark flow control (`*_flow_control_*`):
    Legate does not publish those counters (README, known differences), and Envoy's move with
    timing (a client slow to read a big body makes it pause its upstream read, or not)."""
    before = settled_stats(p, watched, busy)
    action(p)
    after = settled_stats(p, watched, busy)
    return {k: after[k] - before.get(k, 0) for k in after
            if k.startswith(watched) and after[k] != before.get(k, 0)
            and "bytes" not in k and not k.endswith("_ms") and "membership" not in k
            and "_flow_control_" not in k}


def show(label, e, l):
    """A failure message showing both sides."""
    return f"{label}\n  envoy : {e!r}\n  legate: {l!r}"
