"""Runs the same Envoy bootstrap through real Envoy 1.40 and Legate, with real upstreams."""
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEGATE_BIN = os.environ.get("LEGATE_BIN", os.path.join(ROOT, "target/release/legate"))
ENVOY_BIN = os.environ.get("ENVOY_BIN", os.path.join(ROOT, ".venv/bin/envoy"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EchoServer:
    """HTTP/1.1 upstream answering JSON with what it received; `x-echo-status` sets the status."""

    def __init__(self, name):
        server_name = name

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                payload = json.dumps({
                    "server": server_name,
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body_len": len(body),
                }).encode()
                self.send_response(int(self.headers.get("x-echo-status", "200")))
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    """One proxy process (Envoy or Legate) running a bootstrap template."""

    def __init__(self, kind, template, **ports):
        self.kind = kind
        self.listener_port = free_port()
        self.admin_port = free_port()
        config = template.format(listener_port=self.listener_port, admin_port=self.admin_port, **ports)
        fd, self.config_path = tempfile.mkstemp(suffix=".yaml", prefix=f"diff-{kind}-")
        with os.fdopen(fd, "w") as f:
            f.write(config)
        binary = ENVOY_BIN if kind == "envoy" else LEGATE_BIN
        args = [binary, "-c", self.config_path, "--concurrency", "1", "-l", "error", "--use-dynamic-base-id"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} exited: {self.proc.stderr.read().decode()}")
            try:
                if self.admin("/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{kind} did not become ready")

    def admin(self, path, method="GET"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stats(self):
        out = {}
        for line in self.admin("/stats")[1].splitlines():
            name, _, value = line.partition(": ")
            if value.isdigit():
                out[name] = int(value)
        return out

    def raw(self, data, timeout=5):
        """Sends raw bytes; returns (status, headers dict, body bytes) of the first response."""
        with socket.create_connection(("127.0.0.1", self.listener_port), timeout=timeout) as s:
            s.sendall(data)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            while len(body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            return status, headers, body

    def get(self, path, host="example.com", extra=""):
        return self.raw(f"GET {path} HTTP/1.1\r\nhost: {host}\r\n{extra}connection: close\r\n\r\n".encode())

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.unlink(self.config_path)
