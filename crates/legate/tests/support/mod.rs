//! Test support: start the real `legate` binary against upstreams on loopback and talk raw HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;

pub mod pki;
use std::time::{Duration, Instant};

/// The first port this test process hands out; ports below it are never picked.
const FIRST_PICKABLE_PORT: u16 = 10240;

/// How many ports `free_port` picks among (those from `FIRST_PICKABLE_PORT` up to the kernel's
/// ephemeral range, the source ports of outgoing connections), and the offset of the next one
/// it tries, first set by the process's PID.
static PICKER: OnceLock<(usize, AtomicUsize)> = OnceLock::new();

/// A free loopback port (bound then released), never handed out before by this process and
/// below the kernel's ephemeral range: no outgoing connection on the machine can take it as its
/// source port between the pick and the bind of the process it is meant for, and no two tests
/// running at once get the same one.
pub fn free_port() -> u16 {
    let (span, next) = PICKER.get_or_init(|| {
        let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(32768u16);
        let span = usize::from(ephemeral_low.saturating_sub(FIRST_PICKABLE_PORT).max(1024));
        (span, AtomicUsize::new(std::process::id() as usize * 7919 % span))
    });
    for _ in 0..*span {
        let port = FIRST_PICKABLE_PORT + (next.fetch_add(1, Ordering::Relaxed) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below the ephemeral range");
}

/// A running legate process, killed on drop.
pub struct Legate {
    pub child: Child,
    pub admin: SocketAddr,
    pub listener: SocketAddr,
    pub config_path: std::path::PathBuf,
}

impl Drop for Legate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
    }
}

static CONFIG_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Writes `config` to a temp file and returns its path.
pub fn write_config(config: &str) -> std::path::PathBuf {
    let n = CONFIG_SEQ.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("legate-test-{}-{n}.yaml", std::process::id()));
    std::fs::write(&path, config).unwrap();
    path
}

/// Runs `legate` with `args` to completion, returning (exit code, stdout, stderr).
pub fn run_legate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_legate")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Legate {
    /// Starts legate with `config` (placeholders `{listener_port}` and `{admin_port}` are
    /// substituted) and waits until admin /ready answers 200.
    ///
    /// A process that exits before it is ready (a picked port taken before it was bound) is
    /// started again on fresh ports, up to three times.
    pub fn start(config: &str, extra_args: &[&str]) -> Legate {
        for _ in 1..3 {
            if let Some(legate) = Self::try_start(config, extra_args) {
                return legate;
            }
        }
        Self::try_start(config, extra_args).expect("legate exited before it was ready (its stderr is above)")
    }

    /// One start of `start`: `None` when the process exits before it is ready.
    fn try_start(config: &str, extra_args: &[&str]) -> Option<Legate> {
        let listener_port = free_port();
        let admin_port = free_port();
        let config = config
            .replace("{listener_port}", &listener_port.to_string())
            .replace("{admin_port}", &admin_port.to_string());
        let config_path = write_config(&config);
        let child = Command::new(env!("CARGO_BIN_EXE_legate"))
            .arg("-c")
            .arg(&config_path)
            .args(if extra_args.contains(&"--concurrency") { &["-l", "warning"][..] } else { &["--concurrency", "2", "-l", "warning"][..] })
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut legate = Legate {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            listener: SocketAddr::from(([127, 0, 0, 1], listener_port)),
            config_path,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(resp) = try_request(legate.admin, "GET /ready HTTP/1.1\r\nhost: a\r\n\r\n") {
                if resp.status == 200 {
                    return Some(legate);
                }
            }
            if legate.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            assert!(Instant::now() < deadline, "legate did not become ready");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// GETs an admin path and returns the body.
    pub fn admin_get(&self, path: &str) -> Response {
        request(self.admin, &format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n"))
    }

    /// Waits (up to 5 s) until a stat reads `value`: for counts made just after a connection
    /// closed, which a client can observe before they are made.
    pub fn wait_stat(&self, name: &str, value: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.stat(name) != Some(value) {
            assert!(Instant::now() < deadline, "{name} is {:?}, expected {value}", self.stat(name));
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reads a stat value from /stats.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let body = self.admin_get(&format!("/stats?filter=^{}$", regex_escape(name))).text();
        body.lines().find_map(|l| {
            let (n, v) = l.split_once(": ")?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
    }
}

fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if ".[]()*+?".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw bytes and parses one response (panics on I/O errors).
pub fn request(addr: SocketAddr, raw: &str) -> Response {
    try_request(addr, raw).unwrap()
}

/// Sends raw bytes on a fresh connection and parses one response.
pub fn try_request(addr: SocketAddr, raw: &str) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw.as_bytes())?;
    let mut r = BufReader::new(s);
    read_response(&mut r)
}

/// A keep-alive connection to `addr` whose reads time out after 5 s: its writing half and a
/// buffered reader of its responses (for [`read_response`]).
pub fn keep_alive(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (s.try_clone().unwrap(), BufReader::new(s))
}

/// Reads one response from a buffered stream.
pub fn read_response(r: &mut impl BufRead) -> std::io::Result<Response> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l)?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut resp = Response { status, headers, body: Vec::new() };
    if let Some(len) = resp.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        resp.body = body;
    } else if resp.header("transfer-encoding").is_some() {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..n]);
        }
    } else if status >= 200 && status != 204 && status != 304 {
        r.read_to_end(&mut resp.body)?;
    }
    Ok(resp)
}

/// A minimal HTTP/1.1 upstream on loopback: answers every request with `name` in the body and
/// an `x-upstream` header, echoing the request head in `x-echo-*` headers; keeps connections
/// alive. Counts accepted connections.
pub struct Upstream {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Upstream {
    pub fn start(name: &'static str) -> Upstream {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap())
    }

    pub fn start_on(name: &'static str, addr: SocketAddr) -> Upstream {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, reqs) = (connections.clone(), requests.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::Relaxed);
                let reqs = reqs.clone();
                thread::spawn(move || serve_upstream_conn(name, stream, reqs));
            }
        });
        Upstream { addr, connections, requests }
    }
}

fn serve_upstream_conn(name: &str, stream: TcpStream, reqs: Arc<std::sync::Mutex<Vec<String>>>) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut head = String::new();
        loop {
            let mut l = String::new();
            match r.read_line(&mut l) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if l == "\r\n" {
                break;
            }
            head.push_str(&l);
        }
        let lower = head.to_ascii_lowercase();
        let mut body = Vec::new();
        if let Some(len) = find_header(&lower, "content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(len, 0);
            if r.read_exact(&mut body).is_err() {
                return;
            }
        } else if find_header(&lower, "transfer-encoding").is_some() {
            loop {
                let mut size = String::new();
                if r.read_line(&mut size).is_err() {
                    return;
                }
                let Ok(n) = usize::from_str_radix(size.trim(), 16) else { return };
                let mut chunk = vec![0; n + 2];
                if r.read_exact(&mut chunk).is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        reqs.lock().unwrap().push(head.clone());
        let reply = if head.starts_with("POST ") && head.lines().next().is_some_and(|l| l.contains("/echo-body")) {
            body
        } else {
            format!("{name} {}", head.lines().next().unwrap_or("")).into_bytes()
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-upstream: {name}\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        );
        if w.write_all(resp.as_bytes()).is_err() || w.write_all(&reply).is_err() {
            return;
        }
    }
}

fn find_header<'a>(lower_head: &'a str, name: &str) -> Option<&'a str> {
    lower_head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        (n.trim() == name).then(|| v.trim())
    })
}

/// Waits up to 3 s for `done` to hold; panics naming `what` otherwise.
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// An upstream that accepts connections and never answers.
pub fn silent_upstream() -> SocketAddr {
    counting_silent_upstream().0
}

/// An upstream that accepts connections, counts them and never answers; it closes a
/// connection once its peer has.
pub fn counting_silent_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::Relaxed);
            thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    (addr, accepted)
}

/// One `static_resources.clusters` entry (YAML, indented for the list): a STATIC cluster `name`
/// with the single endpoint `addr`.
pub fn static_cluster(name: &str, addr: SocketAddr) -> String {
    format!(
        "  - name: {name}\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: {name}\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}\n",
        addr.ip(),
        addr.port()
    )
}

/// `cluster` (from [`static_cluster`]) with the DEFAULT circuit-breaker `thresholds` (a YAML
/// flow mapping such as `{max_connections: 1}`).
pub fn with_thresholds(cluster: &str, thresholds: &str) -> String {
    cluster.replacen(
        "    load_assignment:",
        &format!("    circuit_breakers:\n      thresholds:\n      - {thresholds}\n    load_assignment:"),
        1,
    )
}

/// A bootstrap with one HTTP listener whose single virtual host has `routes` (YAML list items,
/// e.g. `- match: {prefix: "/a"}` lines indented by 14 spaces) and `clusters` (entries from
/// [`static_cluster`]).
pub fn http_bootstrap(routes: &str, clusters: &str) -> String {
    format!(
        r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {{admin_port}}}}}}
static_resources:
  listeners:
  - name: main
    address: {{socket_address: {{address: 127.0.0.1, port_value: {{listener_port}}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
{routes}          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{clusters}"#
    )
}

/// A bootstrap with one listener routing `/a` to cluster `a` and `/b` to cluster `b` (STATIC).
pub fn two_cluster_config(a: SocketAddr, b: SocketAddr) -> String {
    let routes = concat!(
        "              - match: {prefix: \"/a\"}\n                route: {cluster: a}\n",
        "              - match: {prefix: \"/b\"}\n                route: {cluster: b, timeout: 0.5s}\n",
    );
    http_bootstrap(routes, &(static_cluster("a", a) + &static_cluster("b", b)))
}
