//! HCM access logs end to end: the real binary writes lines for 200, 404 NR, 503 UF and 504 UT
//! streams to files, with Envoy's default format, a custom text format, a JSON format and
//! filters; refused configurations name the field.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

fn temp_log(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("legate-al-{}-{tag}.log", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn config(up: SocketAddr, closed: SocketAddr, silent: SocketAddr, access_log: &str) -> String {
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
          access_log:
{access_log}
          route_config:
            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
              - match: {{prefix: "/ok"}}
                name: ok_route
                route: {{cluster: up}}
              - match: {{prefix: "/closed"}}
                route: {{cluster: closed}}
              - match: {{prefix: "/slow"}}
                route: {{cluster: silent, timeout: 0.3s}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{}{}{}"#,
        static_cluster("up", up),
        static_cluster("closed", closed),
        static_cluster("silent", silent)
    )
}

/// Waits until `path` has `n` lines and returns them.
fn lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "{}: {} of {n} lines: {text}", path.display(), lines.len());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn logger(path: &Path, extra: &str) -> String {
    format!(
        "          - name: envoy.access_loggers.file\n{extra}            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n              path: {}\n",
        path.display()
    )
}

#[test]
fn lines_for_success_and_each_failure_with_filters() {
    let up = Upstream::start("alpha");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let silent = silent_upstream();
    let (all, errors, flagged) = (temp_log("all"), temp_log("errors"), temp_log("flagged"));
    let mut loggers = logger(&all, "");
    loggers.push_str(&logger(&errors, "            filter: {status_code_filter: {comparison: {op: GE, value: {default_value: 400, runtime_key: k}}}}\n"));
    loggers.push_str("              log_format: {text_format_source: {inline_string: \"%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER% %REQ(:PATH)% %ROUTE_NAME% %RESPONSE_CODE_DETAILS% %UPSTREAM_TRANSPORT_FAILURE_REASON%\\n\"}}\n");
    loggers.push_str(&logger(&flagged, "            filter: {or_filter: {filters: [{response_flag_filter: {flags: [UF]}}, {and_filter: {filters: [{not_health_check_filter: {}}, {duration_filter: {comparison: {op: GE, value: {default_value: 250}}}}]}}]}}\n"));
    loggers.push_str("              log_format: {json_format: {code: \"%RESPONSE_CODE%\", flags: \"%RESPONSE_FLAGS%\", up: \"%UPSTREAM_HOST%\", sent: \"%BYTES_SENT%\", rcvd: \"%BYTES_RECEIVED%\", missing: \"%REQ(X-NONE)%\", text: \"[%PROTOCOL%]\"}}\n");
    let legate = Legate::start(&config(up.addr, closed, silent, &loggers), &[]);

    let req = |method: &str, path: &str, extra: &str| {
        request(legate.listener, &format!("{method} {path} HTTP/1.1\r\nhost: example.com\r\nuser-agent: t/1\r\nconnection: close\r\n{extra}\r\n"))
    };
    assert_eq!(req("POST", "/ok?q=1", "content-length: 5\r\n\r\nhello").status, 200);
    // The remaining bodies come in order so the lines do too.
    let all_lines = lines(&all, 1);
    assert_eq!(req("GET", "/nope", "").status, 404);
    lines(&all, 2);
    assert_eq!(req("GET", "/closed", "").status, 503);
    lines(&all, 3);
    assert_eq!(req("GET", "/slow", "").status, 504);
    lines(&all, 4);
    // Refused before routing: logged the way Envoy's codec logs it.
    assert_eq!(request(legate.listener, "GET /ok HTTP/1.0\r\nhost: a\r\n\r\n").status, 426);
    let all_lines = [all_lines, lines(&all, 5)[1..].to_vec()].concat();

    // Envoy's default format.
    let ok = &all_lines[0];
    assert!(ok.starts_with('[') && ok.as_bytes()[25] == b']', "{ok}");
    let rest = &ok[27..];
    let up_host = up.addr.to_string();
    assert!(rest.starts_with("\"POST /ok?q=1 HTTP/1.1\" 200 - 5 "), "{rest}");
    assert!(rest.contains(" \"-\" \"t/1\" \""), "{rest}");
    assert!(rest.ends_with(&format!("\" \"example.com\" \"{up_host}\"")), "{rest}");
    assert!(all_lines[1][27..].starts_with("\"GET /nope HTTP/1.1\" 404 NR 0 0 "), "{}", all_lines[1]);
    assert!(all_lines[1].contains(" - \"-\" \"t/1\" \"") && all_lines[1].ends_with("\" \"example.com\" \"-\""), "{}", all_lines[1]);
    assert!(all_lines[2][27..].starts_with("\"GET /closed HTTP/1.1\" 503 UF 0 "), "{}", all_lines[2]);
    assert!(all_lines[2].ends_with(&format!("\"{closed}\"")), "{}", all_lines[2]);
    assert!(all_lines[3][27..].starts_with("\"GET /slow HTTP/1.1\" 504 UT 0 24 "), "{}", all_lines[3]);
    assert!(all_lines[4][27..].starts_with("\"- - HTTP/1.1\" 426 DPE 0 16 "), "{}", all_lines[4]);
    assert!(all_lines[4].ends_with(" - \"-\" \"-\" \"-\" \"-\" \"-\""), "{}", all_lines[4]);

    // Status filter with a custom format: only the four errors.
    let errs = lines(&errors, 4);
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert_eq!(errs[0], "404 NR - /nope - route_not_found -");
    assert_eq!(
        errs[1],
        "503 UF closed /closed - upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused} delayed_connect_error:_Connection_refused"
    );
    assert_eq!(errs[2], "504 UT silent /slow - response_timeout -");
    assert_eq!(errs[3], "426 DPE - - - low_version -");

    // JSON with a flag-or-slow filter: the UF line and the 0.3 s timeout.
    let json = lines(&flagged, 2);
    assert_eq!(json.len(), 2, "{json:?}");
    assert_eq!(
        json[0],
        format!("{{\"code\":503,\"flags\":\"UF\",\"missing\":null,\"rcvd\":0,\"sent\":98,\"text\":\"[HTTP/1.1]\",\"up\":\"{closed}\"}}")
    );
    assert!(json[1].starts_with("{\"code\":504,\"flags\":\"UT\""), "{}", json[1]);
    assert!(legate.stat("filesystem.write_buffered").unwrap_or(0) >= 11);
    for p in [all, errors, flagged] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn bad_access_log_configs_are_refused_with_their_path() {
    let refused = |access_log: &str| {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let path = write_config(&config(addr, addr, addr, access_log).replace("{admin_port}", "0").replace("{listener_port}", "0"));
        let (code, _, err) = run_legate(&["--mode", "validate", "-c", path.to_str().unwrap()]);
        let _ = std::fs::remove_file(path);
        assert_ne!(code, 0);
        err
    };
    let file = "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: /dev/null, format: \"%WAT%\"}";
    let err = refused(&format!("          - name: a\n{file}\n"));
    assert!(err.contains("access_log[0].typed_config.format: Not supported field in StreamInfo: WAT"), "{err}");
    let grpc = "          - name: g\n            filter: {runtime_filter: {runtime_key: x}}\n            typed_config: {\"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}\n";
    let err = refused(grpc);
    assert!(err.contains("access_log[0].filter.runtime_filter: not supported by legate"), "{err}");
}

#[test]
fn stdout_logger_writes_lines_to_stdout() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let up = Upstream::start("alpha");
    let stdout_logger = "          - name: envoy.access_loggers.stdout\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog\n              log_format: {text_format: \"%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %UPSTREAM_CLUSTER%\\n\"}\n";
    let (listener_port, admin_port) = (free_port(), free_port());
    let text = config(up.addr, up.addr, up.addr, stdout_logger)
        .replace("{listener_port}", &listener_port.to_string())
        .replace("{admin_port}", &admin_port.to_string());
    let path = write_config(&text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_legate"))
        .args(["-c", path.to_str().unwrap(), "--concurrency", "1", "-l", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let listener = SocketAddr::from(([127, 0, 0, 1], listener_port));
    let deadline = Instant::now() + Duration::from_secs(10);
    let resp = loop {
        if let Ok(r) = try_request(listener, "GET /ok/1 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n") {
            break r;
        }
        assert!(Instant::now() < deadline, "legate did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(resp.status, 200);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(path);
    assert_eq!(line, "GET /ok/1 200 up\n");
}

#[test]
fn tcp_proxy_sessions_are_logged_with_bytes_and_failures() {
    use std::io::{Read, Write};

    // Answers "pong" to whatever it gets, then closes.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = server.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in server.incoming().flatten() {
            let mut buf = [0u8; 4];
            if s.read_exact(&mut buf).is_ok() {
                let _ = s.write_all(b"pong");
            }
        }
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let log = temp_log("tcp");
    let run = |target: SocketAddr| {
        let cfg = format!(
            r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {{admin_port}}}}}}
static_resources:
  listeners:
  - name: tcp
    address: {{socket_address: {{address: 127.0.0.1, port_value: {{listener_port}}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: t
          cluster: c
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {}
              log_format: {{text_format_source: {{inline_string: "%UPSTREAM_CLUSTER% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_FLAGS% %PROTOCOL% %RESPONSE_CODE% %UPSTREAM_HOST%\n"}}}}
  clusters:
  - name: c
    connect_timeout: 1s
    load_assignment:
      cluster_name: c
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {}}}}}}}
"#,
            log.display(),
            target.port()
        );
        let legate = Legate::start(&cfg, &[]);
        let mut s = std::net::TcpStream::connect(legate.listener).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"ping");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        // The session ends when both sides have closed; the process must outlive it.
        drop(s);
        (legate, out)
    };
    let (_legate, out) = run(up);
    assert_eq!(out, b"pong");
    assert_eq!(lines(&log, 1)[0], format!("c 4 4 - - 0 {up}"));
    let (_legate, out) = run(closed);
    assert_eq!(out, b"");
    assert_eq!(lines(&log, 2)[1], format!("c 0 0 UF,URX - 0 {closed}"));
    let _ = std::fs::remove_file(log);
}
