//! Downstream TLS end to end: certificates made at test time (a CA, an intermediate, leaves, a
//! wrong CA, an expired leaf), curl as the client, the upstream a plain loopback socket.

mod support;

use std::path::PathBuf;
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use support::*;

/// A private PKI in a temp directory: root CA -> intermediate -> leaves.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let n = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "legate-tls-{}-{}-{}",
            std::process::id(),
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let root = ca("Legate Test Root", None);
        let intermediate = ca("Legate Test Intermediate", Some(&root));
        let wrong = ca("Someone Else's CA", None);
        let pki = Pki { dir };
        pki.write("root.pem", &root.pem());
        pki.write("wrong-ca.pem", &wrong.pem());
        // The server presents leaf + intermediate; clients trust the root.
        let (server, server_key) = leaf(&["localhost"], &intermediate, false);
        pki.write("server.pem", &format!("{server}{}", intermediate.pem()));
        pki.write("server.key", &server_key);
        let (client, client_key) = leaf(&["client.legate.test"], &intermediate, false);
        pki.write("client.pem", &format!("{client}{}", intermediate.pem()));
        pki.write("client.key", &client_key);
        let (renewed, renewed_key) = leaf(&["localhost"], &wrong, false);
        pki.write("renewed.pem", &renewed);
        pki.write("renewed.key", &renewed_key);
        let (stranger, stranger_key) = leaf(&["stranger.test"], &wrong, false);
        pki.write("stranger.pem", &stranger);
        pki.write("stranger.key", &stranger_key);
        let (expired, expired_key) = leaf(&["client.legate.test"], &intermediate, true);
        pki.write("expired.pem", &format!("{expired}{}", intermediate.pem()));
        pki.write("expired.key", &expired_key);
        pki
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

fn ca(name: &str, parent: Option<&CertifiedIssuer<'static, KeyPair>>) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    match parent {
        None => CertifiedIssuer::self_signed(params, key).unwrap(),
        Some(p) => CertifiedIssuer::signed_by(params, key, p).unwrap(),
    }
}

fn leaf(names: &[&str], issuer: &CertifiedIssuer<'static, KeyPair>, expired: bool) -> (String, String) {
    let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn tls_config(upstream: std::net::SocketAddr, pki: &Pki, extra_context: &str, alpn: &str) -> String {
    format!(
        r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {{admin_port}}}}}}
static_resources:
  listeners:
  - name: https
    address: {{socket_address: {{address: 127.0.0.1, port_value: {{listener_port}}}}}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [{alpn}]
            tls_certificates:
            - certificate_chain: {{filename: {chain}}}
              private_key: {{filename: {key}}}
{extra_context}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_https
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: up}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: up
    connect_timeout: 1s
    load_assignment:
      cluster_name: up
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {ip}, port_value: {port}}}}}}}
"#,
        chain = pki.path("server.pem"),
        key = pki.path("server.key"),
        ip = upstream.ip(),
        port = upstream.port(),
    )
}

/// Runs curl against the listener; returns (exit code, stdout, stderr).
fn curl(legate: &Legate, pki: &Pki, args: &[&str]) -> (i32, String, String) {
    let url = format!("https://localhost:{}/hello", legate.listener.port());
    let resolve = format!("localhost:{}:127.0.0.1", legate.listener.port());
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--resolve", &resolve, "--cacert", &pki.path("root.pem")])
        .args(args)
        .arg(&url)
        .output()
        .expect("curl is installed by scripts/setup.sh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mtls_context(pki: &Pki, required: bool) -> String {
    format!(
        "            validation_context:\n              trusted_ca: {{filename: {}}}\n          require_client_certificate: {required}",
        pki.path("root.pem")
    )
}

#[test]
fn https_terminates_tls_and_forwards_plain_http() {
    let pki = Pki::new();
    let up = Upstream::start("alpha");
    let legate = Legate::start(&tls_config(up.addr, &pki, "", "h2, http/1.1"), &[]);
    let (code, body, err) = curl(&legate, &pki, &["--http1.1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(body, "alpha GET /hello HTTP/1.1");
    let head = up.requests.lock().unwrap().last().unwrap().to_ascii_lowercase();
    assert!(head.contains("x-forwarded-proto: https"), "{head}");
    let scope = format!("listener.127.0.0.1_{}.ssl.", legate.listener.port());
    assert_eq!(legate.stat(&format!("{scope}handshake")), Some(1));
    assert_eq!(legate.stat(&format!("{scope}versions.TLSv1.3")), Some(1));
    assert_eq!(legate.stat(&format!("{scope}no_certificate")), Some(1));
}

#[test]
fn alpn_h2_serves_http2_and_tls12_can_be_forced() {
    let pki = Pki::new();
    let up = Upstream::start("alpha");
    let legate = Legate::start(&tls_config(up.addr, &pki, "", "h2, http/1.1"), &[]);
    let (code, out, err) = curl(&legate, &pki, &["--http2", "-o", "/dev/null", "-w", "%{http_version} %{response_code}"]);
    assert_eq!((code, out.as_str()), (0, "2 200"), "{err}");
    let (code, out, err) = curl(&legate, &pki, &["--http1.1", "--tls-max", "1.2", "-o", "/dev/null", "-w", "%{http_version} %{response_code}"]);
    assert_eq!((code, out.as_str()), (0, "1.1 200"), "{err}");
    let scope = format!("listener.127.0.0.1_{}.ssl.", legate.listener.port());
    assert_eq!(legate.stat(&format!("{scope}versions.TLSv1.2")), Some(1));
    assert_eq!(legate.stat(&format!("{scope}http2.downstream_cx_total")).or(Some(0)), Some(0));
    assert_eq!(legate.stat("http.ingress_https.downstream_cx_http2_total"), Some(1));
}

#[test]
fn plain_http_to_a_tls_port_gets_no_http_response() {
    let pki = Pki::new();
    let up = Upstream::start("alpha");
    let legate = Legate::start(&tls_config(up.addr, &pki, "", "http/1.1"), &[]);
    let r = try_request(legate.listener, "GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    assert!(r.is_err(), "no HTTP response on a TLS port: {r:?}");
    let scope = format!("listener.127.0.0.1_{}.ssl.", legate.listener.port());
    legate.wait_stat(&format!("{scope}connection_error"), 1);
    assert_eq!(up.requests.lock().unwrap().len(), 0);
}

#[test]
fn mutual_tls_requires_a_client_certificate_from_the_trusted_ca() {
    let pki = Pki::new();
    let up = Upstream::start("alpha");
    let legate = Legate::start(&tls_config(up.addr, &pki, &mtls_context(&pki, true), "http/1.1"), &[]);
    let (code, body, err) = curl(&legate, &pki, &["--cert", &pki.path("client.pem"), "--key", &pki.path("client.key")]);
    assert_eq!((code, body.as_str()), (0, "alpha GET /hello HTTP/1.1"), "{err}");
    let (code, _, _) = curl(&legate, &pki, &[]);
    assert_ne!(code, 0, "a client without a certificate is refused");
    let (code, _, _) = curl(&legate, &pki, &["--cert", &pki.path("stranger.pem"), "--key", &pki.path("stranger.key")]);
    assert_ne!(code, 0, "a certificate from another CA is refused");
    let (code, _, _) = curl(&legate, &pki, &["--cert", &pki.path("expired.pem"), "--key", &pki.path("expired.key")]);
    assert_ne!(code, 0, "an expired certificate is refused");
    let scope = format!("listener.127.0.0.1_{}.ssl.", legate.listener.port());
    assert_eq!(legate.stat(&format!("{scope}handshake")), Some(1));
    legate.wait_stat(&format!("{scope}fail_verify_no_cert"), 1);
    legate.wait_stat(&format!("{scope}fail_verify_error"), 2);
    assert_eq!(legate.stat(&format!("{scope}connection_error")), Some(0), "verification failures count apart");
    assert_eq!(up.requests.lock().unwrap().len(), 1);
}

#[test]
fn optional_client_certificate_is_verified_when_presented() {
    let pki = Pki::new();
    let up = Upstream::start("alpha");
    let legate = Legate::start(&tls_config(up.addr, &pki, &mtls_context(&pki, false), "http/1.1"), &[]);
    assert_eq!(curl(&legate, &pki, &[]).0, 0, "no certificate is fine when not required");
    let (code, _, _) = curl(&legate, &pki, &["--cert", &pki.path("stranger.pem"), "--key", &pki.path("stranger.key")]);
    assert_ne!(code, 0, "a presented certificate must verify");
}

#[test]
fn a_missing_certificate_file_is_a_startup_error() {
    let pki = Pki::new();
    let config = tls_config("127.0.0.1:1".parse().unwrap(), &pki, "", "http/1.1")
        .replace(&pki.path("server.pem"), "/nonexistent/server.pem")
        .replace("{listener_port}", &free_port().to_string())
        .replace("{admin_port}", &free_port().to_string());
    let path = write_config(&config);
    let (code, _, err) = run_legate(&["-c", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/server.pem"), "{err}");
}


#[test]
fn certificate_files_are_reloaded_without_a_restart() {
    let pki = Pki::new();
    let up = Upstream::start("alpha");
    let legate = Legate::start(&tls_config(up.addr, &pki, "", "http/1.1"), &[]);
    assert_eq!(curl(&legate, &pki, &[]).0, 0);
    // A renewed certificate from another CA replaces the files (the key first, then the chain).
    std::fs::copy(pki.dir.join("renewed.key"), pki.dir.join("server.key")).unwrap();
    std::fs::copy(pki.dir.join("renewed.pem"), pki.dir.join("server.pem")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (code, body, _) = curl(&legate, &pki, &["--cacert", &pki.path("wrong-ca.pem")]);
        if code == 0 {
            assert_eq!(body, "alpha GET /hello HTTP/1.1");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the renewed certificate was not picked up");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_ne!(curl(&legate, &pki, &[]).0, 0, "the old CA no longer verifies the served certificate");
    let scope = format!("listener.127.0.0.1_{}.ssl.", legate.listener.port());
    assert!(legate.stat(&format!("{scope}context_updated")).unwrap_or(0) >= 1);
}
