//! `legate demo`: the seed's front-proxy system on loopback with embedded defaults — the proxy on
//! 8080 and 8443 (TLS, self-signed certificate generated at start; admin 9901) in front of an
//! in-process film-service (5000) and rating-service (6000).

use std::sync::Arc;

use anyhow::Context as _;
use legate_demo_services::{film::FilmService, http_server, rating::RatingService};

/// The embedded front-proxy bootstrap; `{cert_dir}` stands for the certificate directory.
const DEMO_CONFIG: &str = include_str!("demo.yaml");

/// Writes a fresh self-signed certificate for `localhost` and `127.0.0.1` into `dir`
/// (`cert.pem`, `key.pem`) and returns the bootstrap that uses it.
pub fn demo_config(dir: &std::path::Path) -> anyhow::Result<String> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "legate demo");
    let cert = params.self_signed(&key)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("cert.pem"), cert.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    Ok(DEMO_CONFIG.replace("{cert_dir}", &dir.display().to_string()))
}

/// Where `legate demo` keeps its certificate.
pub fn cert_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("legate-demo")
}

/// Starts both services on a thread of their own and returns once they are listening.
pub fn start_services() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (films, ratings) = runtime.block_on(async {
        let films = tokio::net::TcpListener::bind("127.0.0.1:5000").await.context("film-service port 5000")?;
        let ratings = tokio::net::TcpListener::bind("127.0.0.1:6000").await.context("rating-service port 6000")?;
        anyhow::Ok((films, ratings))
    })?;
    std::thread::Builder::new().name("demo-services".into()).spawn(move || {
        runtime.block_on(async move {
            let film = Arc::new(FilmService::new("http://127.0.0.1:8080/ratings".into()));
            let rating = Arc::new(RatingService::default());
            let f = http_server::serve(films, "film-service", move |r| film.clone().handle(r), std::future::pending());
            let r = http_server::serve(ratings, "rating-service", move |r| rating.clone().handle(r), std::future::pending());
            tokio::join!(f, r);
        })
    })?;
    Ok(())
}

/// What to try, printed once the proxy is up.
pub fn banner(cert_dir: &std::path::Path) -> String {
    format!(
        r#"
Legate demo: front proxy on http://127.0.0.1:8080 and https://localhost:8443, admin on http://127.0.0.1:9901
  curl -X POST http://127.0.0.1:8080/films --data "{{'name': 'Anand', 'language': 'English'}}"
  curl http://127.0.0.1:8080/films
  curl 'http://127.0.0.1:8080/films?name=Anand'
  curl http://127.0.0.1:8080/ratings
  curl --cacert {cert}/cert.pem https://localhost:8443/films
  curl http://127.0.0.1:9901/stats/prometheus
Ctrl-C stops it.
"#,
        cert = cert_dir.display()
    )
}
