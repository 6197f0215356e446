//! A private PKI made at test time with rcgen: a root CA, an intermediate, leaves with chosen
//! names, a wrong CA and an expired leaf.

use std::path::PathBuf;
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

use super::{http_bootstrap, static_cluster, Legate};

/// A private PKI in a temp directory: root CA -> intermediate -> leaves.
pub struct Pki {
    /// The directory holding the PEM files.
    pub dir: PathBuf,
}

impl Pki {
    /// Makes the PKI: `root.pem`, `intermediate.pem`, `wrong-ca.pem`; `server` (localhost) and
    /// `client` (client.legate.test) from the intermediate, with it in their chain; `renewed`
    /// (localhost) and `stranger` from the wrong CA; `expired` (client.legate.test); `wild`
    /// (DNS *.legate.test) and `spiffe` (URI spiffe://legate.test/ns/web) from the intermediate,
    /// with it in their chain.
    pub fn new() -> Pki {
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
        pki.write("intermediate.pem", &intermediate.pem());
        let (wild, wild_key) = leaf(&["*.legate.test"], &intermediate, false);
        pki.write("wild.pem", &format!("{wild}{}", intermediate.pem()));
        pki.write("wild.key", &wild_key);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::URI("spiffe://legate.test/ns/web".try_into().unwrap())];
        let key = KeyPair::generate().unwrap();
        pki.write("spiffe.pem", &format!("{}{}", params.signed_by(&key, &intermediate).unwrap().pem(), intermediate.pem()));
        pki.write("spiffe.key", &key.serialize_pem());
        pki
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    /// The path of one of the files.
    pub fn path(&self, name: &str) -> String {
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

/// Runs curl against the listener; returns (exit code, stdout, stderr).
pub fn curl(legate: &Legate, pki: &Pki, args: &[&str]) -> (i32, String, String) {
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

/// A bootstrap with one TLS listener serving `server.pem` (ALPN `alpn`; `extra_context` is YAML
/// appended to the `DownstreamTlsContext` after the certificates; stat prefix `ingress_https`)
/// routing everything to `upstream` (cluster `up`).
pub fn tls_config(upstream: std::net::SocketAddr, pki: &Pki, extra_context: &str, alpn: &str) -> String {
    let routes = "              - match: {prefix: \"/\"}\n                route: {cluster: up}\n";
    let tls = format!(
        r#"    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [{alpn}]
            tls_certificates:
            - certificate_chain: {{filename: {chain}}}
              private_key: {{filename: {key}}}
{extra_context}
      filters:"#,
        chain = pki.path("server.pem"),
        key = pki.path("server.key"),
    );
    http_bootstrap(routes, &static_cluster("up", upstream))
        .replacen("    - filters:", &tls, 1)
        .replacen("stat_prefix: ingress_http\n", "stat_prefix: ingress_https\n", 1)
}
