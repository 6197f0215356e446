//! Certificate verification options of TLS contexts, end to end: SAN matchers and pins on a
//! listener's client certificates (curl as the client) and on an upstream's certificate
//! (`openssl s_server` as the upstream).

mod support;

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};

use support::pki::{curl, tls_config, Pki};
use support::*;

/// A TLS listener verifying clients with `validation` (YAML lines indented for
/// `validation_context`), routing to `upstream`.
fn listener_config(pki: &Pki, validation: &str, upstream: SocketAddr) -> String {
    tls_config(upstream, pki, &format!("            validation_context:\n{validation}"), "http/1.1")
}

fn with_cert(legate: &Legate, pki: &Pki, name: &str) -> i32 {
    let (cert, key) = (pki.path(&format!("{name}.pem")), pki.path(&format!("{name}.key")));
    curl(legate, pki, &["--http1.1", "--cert", &cert, "--key", &key]).0
}

/// `openssl` output for a shell pipeline on a certificate file.
fn openssl_digest(pipeline: &str) -> String {
    let out = Command::new("sh").args(["-c", pipeline]).output().expect("openssl is installed by scripts/setup.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn san_matchers_choose_the_client_certificates_and_make_one_mandatory() {
    let pki = Pki::new();
    let up = Upstream::start("alpha");
    let validation = format!(
        "              trusted_ca: {{filename: {}}}\n              match_typed_subject_alt_names:\n              - {{san_type: DNS, matcher: {{exact: API.legate.test}}}}\n              - {{san_type: URI, matcher: {{prefix: \"spiffe://legate.test/\"}}}}",
        pki.path("root.pem")
    );
    let legate = Legate::start(&listener_config(&pki, &validation, up.addr), &[]);
    assert_eq!(with_cert(&legate, &pki, "wild"), 0, "*.legate.test covers the exact api.legate.test");
    assert_eq!(with_cert(&legate, &pki, "spiffe"), 0, "the URI prefix matches");
    assert_ne!(with_cert(&legate, &pki, "client"), 0, "client.legate.test matches nothing");
    assert_ne!(curl(&legate, &pki, &["--http1.1"]).0, 0, "SAN matchers demand a certificate");
    let scope = format!("listener.127.0.0.1_{}.ssl.", legate.listener.port());
    legate.wait_stat(&format!("{scope}fail_verify_san"), 1);
    legate.wait_stat(&format!("{scope}fail_verify_no_cert"), 1);
    assert_eq!(legate.stat(&format!("{scope}handshake")), Some(2));
    assert_eq!(legate.stat(&format!("{scope}fail_verify_error")), Some(0));
}

#[test]
fn pinned_client_certificates_need_no_ca() {
    let pki = Pki::new();
    let up = Upstream::start("alpha");
    let hash = openssl_digest(&format!("openssl x509 -in {} -noout -fingerprint -sha256 | cut -d= -f2", pki.path("client.pem")));
    let spki = openssl_digest(&format!(
        "openssl x509 -in {} -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64",
        pki.path("spiffe.pem")
    ));
    let validation = format!("              verify_certificate_hash: [\"{hash}\"]\n              verify_certificate_spki: [\"{spki}\"]");
    let legate = Legate::start(&listener_config(&pki, &validation, up.addr), &[]);
    assert_eq!(with_cert(&legate, &pki, "client"), 0, "pinned by its certificate hash (colon form)");
    assert_eq!(with_cert(&legate, &pki, "spiffe"), 0, "pinned by its key");
    assert_ne!(with_cert(&legate, &pki, "stranger"), 0, "neither pin matches");
    let scope = format!("listener.127.0.0.1_{}.ssl.", legate.listener.port());
    legate.wait_stat(&format!("{scope}fail_verify_cert_hash"), 1);
    assert_eq!(legate.stat(&format!("{scope}fail_verify_error")), Some(0), "no CA: the chain is not checked");
}

/// `openssl s_server -www` serving `server.pem` (DNS:localhost), or with `sni_only` only to
/// clients asking for localhost (others get `stranger.pem`, from the wrong CA); killed on drop.
struct TlsUpstream {
    child: Child,
    addr: SocketAddr,
}

impl TlsUpstream {
    fn start(pki: &Pki, sni_only: bool) -> TlsUpstream {
        let (server, key) = (pki.path("server.pem"), pki.path("server.key"));
        let (stranger, stranger_key) = (pki.path("stranger.pem"), pki.path("stranger.key"));
        let certs = match sni_only {
            false => vec!["-cert", &server, "-key", &key],
            true => vec!["-cert", &stranger, "-key", &stranger_key, "-servername", "localhost", "-cert2", &server, "-key2", &key],
        };
        // A free port can be taken by a test running alongside before s_server binds it: then
        // s_server exits, and the port answers for someone else. Retry on a new port.
        for _ in 0..5 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut child = Command::new("openssl")
                .args(["s_server", "-quiet", "-www", "-accept", &addr.to_string()])
                .args(&certs)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("openssl is installed by scripts/setup.sh");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while TcpStream::connect(addr).is_err() && child.try_wait().ok().flatten().is_none() {
                assert!(std::time::Instant::now() < deadline, "openssl s_server did not start");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            if child.try_wait().ok().flatten().is_none() {
                return TlsUpstream { child, addr };
            }
        }
        panic!("openssl s_server could not bind a port");
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS cluster sending the SNI localhost; `extra` is YAML at the cluster's level.
fn tls_cluster(name: &str, addr: SocketAddr, validation: &str, extra: &str) -> String {
    format!(
        r#"  - name: {name}
    connect_timeout: 1s
{extra}    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: localhost
        common_tls_context:
          validation_context: {validation}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {ip}, port_value: {port}}}}}}}
"#,
        ip = addr.ip(),
        port = addr.port()
    )
}

#[test]
fn an_upstream_certificate_failing_the_san_matchers_or_pins_is_a_503() {
    let pki = Pki::new();
    let upstream = TlsUpstream::start(&pki, false);
    let ca = pki.path("intermediate.pem");
    let clusters = [
        tls_cluster("a", upstream.addr, &format!("{{trusted_ca: {{filename: {ca}}}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: localhost}}}}]}}"), ""),
        tls_cluster("b", upstream.addr, &format!("{{trusted_ca: {{filename: {ca}}}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: other.test}}}}]}}"), ""),
    ];
    let legate = Legate::start(&with_clusters(&clusters), &[]);
    let ok = request(legate.listener, "GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(ok.status, 200, "{}", ok.text());
    let refused = request(legate.listener, "GET /b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.text(), "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure");
    assert_eq!(legate.stat("cluster.a.ssl.handshake"), Some(1));
    assert_eq!(legate.stat("cluster.b.ssl.fail_verify_san"), Some(1));
    assert_eq!(legate.stat("cluster.b.ssl.fail_verify_error"), Some(0));
}

/// A bootstrap with these clusters (from [`tls_cluster`]), each routed from `/<its name>`.
fn with_clusters(clusters: &[String]) -> String {
    let routes: String = clusters
        .iter()
        .filter_map(|c| c.strip_prefix("  - name: ")?.lines().next())
        .map(|c| format!("              - match: {{prefix: \"/{c}\"}}\n                route: {{cluster: {c}}}\n"))
        .collect();
    http_bootstrap(&routes, &clusters.concat())
}

fn protocol_options(options: &str) -> String {
    format!(
        "    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        upstream_http_protocol_options: {options}\n        explicit_http_config: {{http_protocol_options: {{}}}}\n"
    )
}

#[test]
fn auto_sni_and_auto_san_validation_use_the_request_host() {
    let pki = Pki::new();
    // Only a client asking for localhost gets the certificate from the trusted CA.
    let upstream = TlsUpstream::start(&pki, true);
    let ca = format!("{{trusted_ca: {{filename: {}}}}}", pki.path("intermediate.pem"));
    let clusters = [
        tls_cluster("a", upstream.addr, &ca, &protocol_options("{auto_sni: true}")),
        tls_cluster("b", upstream.addr, &ca, &protocol_options("{auto_sni: true, auto_san_validation: true}")),
    ];
    let legate = Legate::start(&with_clusters(&clusters), &[]);
    let get = |path: &str, host: &str| request(legate.listener, &format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n")).status;
    assert_eq!(get("/a", "LocalHost:8443"), 200, "the SNI is the host, lower-cased, without the port");
    assert_eq!(get("/a", "other.test"), 503, "another name gets the untrusted certificate");
    assert_eq!(legate.stat("cluster.a.ssl.fail_verify_error"), Some(1));
    assert_eq!(get("/b", "localhost"), 200);
    assert_eq!(get("/b", "127.0.0.1"), 503, "an address: the configured SNI, but the address is not a SAN");
    assert_eq!(legate.stat("cluster.b.ssl.fail_verify_san"), Some(1));
    assert_eq!(legate.stat("cluster.b.ssl.handshake"), Some(1));
}

#[test]
fn health_checks_of_tls_clusters_apply_the_san_matchers_and_pins() {
    let pki = Pki::new();
    let upstream = TlsUpstream::start(&pki, false);
    let ca = pki.path("intermediate.pem");
    let check = "    health_checks: [{timeout: 1s, interval: 0.1s, no_traffic_interval: 0.1s, unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {}}]\n";
    let pin = "00".repeat(32);
    let clusters = [
        tls_cluster("a", upstream.addr, &format!("{{trusted_ca: {{filename: {ca}}}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: localhost}}}}]}}"), check),
        tls_cluster("b", upstream.addr, &format!("{{trusted_ca: {{filename: {ca}}}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: other.test}}}}]}}"), check),
        tls_cluster("c", upstream.addr, &format!("{{verify_certificate_hash: [\"{pin}\"]}}"), check),
    ];
    let config = with_clusters(&clusters);
    let legate = Legate::start(&config, &[]);
    let flags = |cluster: &str| {
        let prefix = format!("{cluster}::{}::health_flags::", upstream.addr);
        let clusters = legate.admin_get("/clusters").text();
        clusters.lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_string)).unwrap_or_default()
    };
    let at_least = |name: &str| legate.stat(name).unwrap_or(0) >= 1;
    wait_until("the checks of every cluster ran", || {
        flags("a") == "healthy" && at_least("cluster.b.ssl.fail_verify_san") && at_least("cluster.c.ssl.fail_verify_cert_hash")
    });
    assert_eq!(flags("b"), "/failed_active_hc");
    assert_eq!(flags("c"), "/failed_active_hc");
    assert_eq!(legate.stat("cluster.b.ssl.handshake"), Some(0));
    assert_eq!(legate.stat("cluster.c.ssl.handshake"), Some(0));
    assert_eq!(request(legate.listener, "GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").status, 200);
}
