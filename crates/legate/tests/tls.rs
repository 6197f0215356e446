//! Downstream TLS end to end: certificates made at test time (a CA, an intermediate, leaves, a
//! wrong CA, an expired leaf), curl as the client, the upstream a plain loopback socket.

mod support;

use support::pki::{curl, tls_config, Pki};
use support::*;

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

/// The subject of the certificate the listener serves for `sni`, as openssl s_client sees it.
fn served_subject(legate: &Legate, sni: &str) -> String {
    let hello = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &legate.listener.to_string(), "-servername", sni])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed by scripts/setup.sh");
    let mut x509 = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(x509.stdin.as_mut().unwrap(), &hello.stdout).unwrap();
    String::from_utf8_lossy(&x509.wait_with_output().unwrap().stdout).trim().to_string()
}

#[test]
fn several_certificates_are_chosen_by_server_name() {
    let pki = Pki::new();
    let up = Upstream::start("alpha");
    let second = format!(
        "            - certificate_chain: {{filename: {}}}\n              private_key: {{filename: {}}}",
        pki.path("stranger.pem"),
        pki.path("stranger.key")
    );
    let legate = Legate::start(&tls_config(up.addr, &pki, &second, "http/1.1"), &[]);
    assert!(served_subject(&legate, "stranger.test").ends_with("CN = stranger.test"));
    assert!(served_subject(&legate, "localhost").ends_with("CN = localhost"));
    assert!(served_subject(&legate, "unknown.test").ends_with("CN = localhost"), "no match: the first");
    assert_eq!(curl(&legate, &pki, &[]).0, 0);
}
