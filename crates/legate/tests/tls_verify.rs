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

/// `openssl s_server -www` serving `server.pem` (DNS:localhost); killed on drop.
struct TlsUpstream {
    child: Child,
    addr: SocketAddr,
}

impl TlsUpstream {
    fn start(pki: &Pki) -> TlsUpstream {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", &addr.to_string(), "-cert", &pki.path("server.pem"), "-key", &pki.path("server.key")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl is installed by scripts/setup.sh");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(std::time::Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        TlsUpstream { child, addr }
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_cluster(name: &str, addr: SocketAddr, validation: &str) -> String {
    format!(
        r#"  - name: {name}
    connect_timeout: 1s
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
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
    let upstream = TlsUpstream::start(&pki);
    let ca = pki.path("intermediate.pem");
    let clusters = [
        tls_cluster("a", upstream.addr, &format!("{{trusted_ca: {{filename: {ca}}}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: localhost}}}}]}}")),
        tls_cluster("b", upstream.addr, &format!("{{trusted_ca: {{filename: {ca}}}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: other.test}}}}]}}")),
    ];
    let config = two_cluster_config("127.0.0.1:1".parse().unwrap(), "127.0.0.1:1".parse().unwrap());
    let (head, _) = config.split_once("  clusters:\n").unwrap();
    let legate = Legate::start(&format!("{head}  clusters:\n{}", clusters.concat()), &[]);
    let ok = request(legate.listener, "GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(ok.status, 200, "{}", ok.text());
    let refused = request(legate.listener, "GET /b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.text(), "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure");
    assert_eq!(legate.stat("cluster.a.ssl.handshake"), Some(1));
    assert_eq!(legate.stat("cluster.b.ssl.fail_verify_san"), Some(1));
    assert_eq!(legate.stat("cluster.b.ssl.fail_verify_error"), Some(0));
}
