//! The film and rating services over real sockets: the seed's flow with its pseudo-JSON bodies.

mod common;

use std::sync::Arc;

use legate_demo_services::film::FilmService;
use legate_demo_services::http_server::{self, post_json};
use legate_demo_services::rating::RatingService;
use serde_json::Value;
use tokio::net::TcpListener;

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap())
}


#[tokio::test]
async fn seed_flow_creates_film_and_its_rating() {
    let rl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raddr = rl.local_addr().unwrap();
    let rating = Arc::new(RatingService::default());
    tokio::spawn(http_server::serve(rl, "rating-service", move |r| rating.clone().handle(r), std::future::pending()));
    let fl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let faddr = fl.local_addr().unwrap();
    let film = Arc::new(FilmService::new(format!("http://{raddr}/ratings")));
    tokio::spawn(http_server::serve(fl, "film-service", move |r| film.clone().handle(r), std::future::pending()));

    let (status, list) = common::call("POST", faddr, "/films", Some("{\n    'name': 'Anand',\n    'language': 'English'\n  }")).await;
    assert_eq!(status, 200);
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["name"], "Anand");

    let (status, one) = get(faddr, "/films?name=Anand").await;
    assert_eq!((status, one["language"].as_str()), (200, Some("English")));
    let (status, by_id) = get(faddr, &format!("/films/{id}")).await;
    assert_eq!((status, by_id["name"].as_str()), (200, Some("Anand")));
    let (status, _) = get(faddr, "/films?name=Nope").await;
    assert_eq!(status, 404);

    let (status, ratings) = get(raddr, "/ratings").await;
    assert_eq!(status, 200);
    assert_eq!(ratings[0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(ratings[0]["rating"], "5");
    let (status, r) = get(raddr, "/ratings?name=Anand").await;
    assert_eq!((status, r["rating"].as_str()), (200, Some("5")));

    let (status, health) = get(faddr, "/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn malformed_bodies_get_400_json_errors() {
    let rl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raddr = rl.local_addr().unwrap();
    let rating = Arc::new(RatingService::default());
    tokio::spawn(http_server::serve(rl, "rating-service", move |r| rating.clone().handle(r), std::future::pending()));
    for body in ["{'name': ", "[]", "{'nom': 'x'}", "not json"] {
        let (status, err) = common::call("POST", raddr, "/ratings", Some(body)).await;
        assert_eq!(status, 400, "{body}");
        assert!(err["error"].is_string());
    }
    let (status, _) = post_json(&format!("http://{raddr}/ratings"), &serde_json::json!({"name": "ok"})).await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn film_creation_reports_an_unreachable_rating_service() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let fl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let faddr = fl.local_addr().unwrap();
    let film = Arc::new(FilmService::new(format!("http://{closed}/ratings")));
    tokio::spawn(http_server::serve(fl, "film-service", move |r| film.clone().handle(r), std::future::pending()));
    let (status, err) = common::call("POST", faddr, "/films", Some("{'name': 'A', 'language': 'B'}")).await;
    assert_eq!(status, 502);
    assert!(err["error"].as_str().unwrap().contains("unreachable"));
    let (_, list) = get(faddr, "/films").await;
    assert_eq!(list, serde_json::json!([]), "a film whose rating failed is not stored");
}
