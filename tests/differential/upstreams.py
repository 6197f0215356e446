"""Real upstream servers on loopback for the differential suite.

- EchoServer: HTTP/1.1, answers JSON describing the request it received. Request headers steer it:
    x-echo-status: N         answer with status N
    x-echo-delay-ms: N       wait N ms before answering
    x-echo-body-bytes: N     answer with an N-byte body (pattern_bytes) streamed chunked
    x-echo-header: k=v       add response header k: v (repeatable)
    x-echo-reset: 1          close the connection without answering
  It records every request (with the peer port) in `requests`.
- SilentServer: accepts connections, reads, never answers (route timeouts -> 504).
- Dnsmasq: a real DNS server (dnsmasq) on 127.0.0.x serving an addn-hosts file; set_records()
  rewrites it and sends SIGHUP to that dnsmasq's PID.
- closed_port(): a port nothing listens on (connection refused -> 503 UF).
- FirstRequestFails + threaded_http_server(): an http.server handler base that tells whether a
  path is seen for the first time (flapping upstreams for retry tests), and a context manager
  serving a handler class on a free loopback port.
"""
import contextlib
import hashlib
import http.server
import json
import os
import random
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

# Seconds; every upstream socket is bounded. Long enough that the upstream never closes a pooled
# idle connection during a run (a close racing a reused connection would be a spurious 503).
SOCKET_TIMEOUT = 300


def pattern_bytes(n):
    """Deterministic test payload of n bytes (a 251-byte cycle, so misaligned copies show)."""
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def _ephemeral_low():
    """The first port of the kernel's ephemeral range (source ports of outgoing connections)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports below the ephemeral range: the kernel never hands them out as source ports, so a
# connection made by anyone on the machine between our pick and the proxy's bind cannot take one.
# Each pick takes a port off the shuffled list, so none is handed out twice by this process; a
# port that does not bind is skipped.
_PICKABLE = list(range(10240, max(10241, _ephemeral_low())))
random.shuffle(_PICKABLE)
_pick_lock = threading.Lock()


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    """A port that was free on `host` a moment ago, never handed out before by this process."""
    with _pick_lock:
        while _PICKABLE:
            port = _PICKABLE.pop()
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port left below the ephemeral range")


def closed_port():
    """A port nothing listens on (bound, then closed): connecting to it is refused."""
    return free_port()


class _Reader:
    """Buffered reads from a socket with a hard cap, for the hand-written upstream parser."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("peer closed")
        self.buf += chunk

    def line(self, limit=128 * 1024):
        while b"\r\n" not in self.buf:
            if len(self.buf) > limit:
                raise ValueError("line too long")
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def _read_request(reader):
    """Parses one HTTP/1.1 request; returns (method, target, version, [(name, value)], body)."""
    request_line = reader.line()
    while request_line == b"":
        request_line = reader.line()
    method, target, version = request_line.decode("latin-1").split(" ", 2)
    headers = []
    while True:
        line = reader.line()
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))
    hmap = {}
    for k, v in headers:
        hmap.setdefault(k, v)
    body = b""
    if "chunked" in hmap.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int(reader.line().split(b";")[0].strip(), 16)
            if size == 0:
                while reader.line():  # trailers
                    pass
                break
            parts.append(reader.exactly(size))
            reader.line()
        body = b"".join(parts)
    elif "content-length" in hmap:
        body = reader.exactly(int(hmap["content-length"]))
    return method, target, version, headers, body


class EchoServer:
    """HTTP/1.1 upstream identifying itself by `name`; see the module doc for the x-echo-* knobs."""

    def __init__(self, name, host="127.0.0.1", port=0):
        self.name = name
        self.requests = []  # one dict per request received (what the JSON answer holds)
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(SOCKET_TIMEOUT)
                with contextlib.suppress(OSError, ConnectionError, ValueError):
                    outer._serve_connection(self.request, self.client_address)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((host, port), Handler)
        self.host, self.port = self.server.server_address
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _serve_connection(self, sock, peer):
        reader = _Reader(sock)
        while True:
            method, target, version, headers, body = _read_request(reader)
            hmap = {}
            for k, v in headers:
                hmap[k] = v if k not in hmap else hmap[k] + "," + v
            record = {
                "server": self.name,
                "method": method,
                "path": target,
                "version": version,
                "headers": hmap,
                "header_list": headers,
                "body_len": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "peer_port": peer[1],
            }
            with self._lock:
                self.requests.append(record)
            if hmap.get("x-echo-reset"):
                return  # close without answering
            delay = int(hmap.get("x-echo-delay-ms", "0"))
            if delay:
                time.sleep(delay / 1000)
            status = int(hmap.get("x-echo-status", "200"))
            extra = [tuple(h.split("=", 1)) for k, h in headers if k == "x-echo-header"]
            head = [f"HTTP/1.1 {status} Echo", f"x-echo-server: {self.name}"]
            head += [f"{k}: {v}" for k, v in extra]
            if "x-echo-body-bytes" in hmap:
                n = int(hmap["x-echo-body-bytes"])
                head += ["content-type: application/octet-stream", "transfer-encoding: chunked"]
                sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
                payload, step = pattern_bytes(n), 64 * 1024
                for i in range(0, n, step):
                    piece = payload[i:i + step]
                    sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
            else:
                payload = json.dumps(record).encode() if method != "HEAD" else b""
                head += ["content-type: application/json", f"content-length: {len(json.dumps(record))}"]
                sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
            if hmap.get("connection", "").lower() == "close":
                return

    def peer_ports(self, path_prefix):
        """Peer ports of the upstream connections that carried requests under path_prefix."""
        with self._lock:
            return [r["peer_port"] for r in self.requests if r["path"].startswith(path_prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """Accepts connections and reads whatever comes, but never answers (for route timeouts)."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._conns = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(SOCKET_TIMEOUT)
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn):
        with contextlib.suppress(OSError):
            while not self._stop.is_set() and conn.recv(65536):
                pass

    def close(self):
        self._stop.set()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.close()
        self.sock.close()


def dnsmasq_binary():
    """Path of dnsmasq, or None when it is not installed."""
    return shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/usr/bin/dnsmasq") if os.access(p, os.X_OK)), None)


class Dnsmasq:
    """dnsmasq answering from an addn-hosts file on 127.0.0.x:PORT (never port 53, never 0.0.0.0)."""

    def __init__(self, records):
        binary = dnsmasq_binary()
        if binary is None:
            raise FileNotFoundError("dnsmasq")
        self.dir = tempfile.mkdtemp(prefix="diff-dns-")
        os.chmod(self.dir, 0o755)
        self.hosts = os.path.join(self.dir, "hosts")
        self._write(records)
        # A random 127.0.0.x so parallel runs (and crates/legate's own DNS test) never collide.
        self.address = f"127.0.0.{random.randint(100, 250)}"
        self.port = free_port(self.address, socket.SOCK_DGRAM)
        self.log = open(os.path.join(self.dir, "dnsmasq.log"), "w+b")
        self.proc = subprocess.Popen(
            [binary, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--bind-interfaces", f"--listen-address={self.address}", f"--port={self.port}",
             f"--addn-hosts={self.hosts}", "--local-ttl=0", "--user=root", "--pid-file=",
             "--log-facility=-"],
            stdout=self.log, stderr=self.log)
        self.pid = self.proc.pid
        try:
            self._wait_answering()
        except Exception:
            self.close()
            raise

    def _write(self, records):
        tmp = self.hosts + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(f"{ip} {name}\n" for ip, name in records))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.hosts)

    def _wait_answering(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"dnsmasq exited {self.proc.returncode}: {self.log.read().decode()}")
            if self.query("probe.invalid") is not None:
                return
            time.sleep(0.05)
        raise RuntimeError("dnsmasq did not answer")

    def query(self, name):
        """Sends one A query; returns the list of addresses, or None without an answer."""
        qid = random.randint(0, 0xFFFF)
        packet = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        packet += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00\x00\x01\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            try:
                s.sendto(packet, (self.address, self.port))
                data = s.recv(4096)
            except OSError:
                return None
        if data[:2] != packet[:2]:
            return None
        answers = int.from_bytes(data[6:8], "big")
        pos, out = len(packet), []
        for _ in range(answers):
            pos += 2 if data[pos] & 0xC0 == 0xC0 else data.index(b"\x00", pos) + 1 - pos
            rtype, rdlen = int.from_bytes(data[pos:pos + 2], "big"), int.from_bytes(data[pos + 8:pos + 10], "big")
            if rtype == 1 and rdlen == 4:
                out.append(socket.inet_ntoa(data[pos + 10:pos + 14]))
            pos += 10 + rdlen
        return out

    def set_records(self, records):
        """Replaces the records ([(ip, name)]) and makes dnsmasq reload them (SIGHUP to its PID)."""
        self._write(records)
        os.kill(self.pid, signal.SIGHUP)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FirstRequestFails(http.server.BaseHTTPRequestHandler):
    """Base of handlers whose first request for each path fails (subclasses decide how)."""
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    seen = set()  # subclasses share it: tests use distinct paths

    def first_time(self):
        """Whether this request's path was never seen before (and records it)."""
        with self.lock:
            first = self.path not in self.seen
            self.seen.add(self.path)
        return first

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def threaded_http_server(handler):
    """Serves `handler` (an http.server handler class) on 127.0.0.1; yields the port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
