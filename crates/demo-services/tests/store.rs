//! Store mode (`STORE_URL`): film and rating replicas keep their records in one record-store, so a
//! record created through one replica is seen through every other one.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use legate_demo_services::film::FilmService;
use legate_demo_services::http_server::{self, request_json};
use legate_demo_services::rating::RatingService;
use legate_demo_services::records::Records;
use legate_demo_services::store::RecordStore;
use http::Method;
use serde_json::{json, Value};
use tokio::net::TcpListener;


async fn start_store() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let store = Arc::new(RecordStore::default());
    tokio::spawn(http_server::serve(l, "record-store", move |r| store.clone().handle(r), std::future::pending()));
    addr
}

async fn start_rating(records: Records) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let svc = Arc::new(RatingService::with_records(records));
    tokio::spawn(http_server::serve(l, "rating-service", move |r| svc.clone().handle(r), std::future::pending()));
    addr
}

async fn start_film(rating: SocketAddr, records: Records) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let svc = Arc::new(FilmService::with_records(format!("http://{rating}/ratings"), records));
    tokio::spawn(http_server::serve(l, "film-service", move |r| svc.clone().handle(r), std::future::pending()));
    addr
}

#[tokio::test]
async fn replicas_sharing_a_store_agree() {
    let store = start_store().await;
    let base = format!("http://{store}");
    let r1 = start_rating(Records::remote(&base, "ratings")).await;
    let r2 = start_rating(Records::remote(&format!("{base}/"), "ratings")).await;
    // film replica 1 creates ratings through rating replica 1; film replica 2 through replica 2.
    let f1 = start_film(r1, Records::remote(&base, "films")).await;
    let f2 = start_film(r2, Records::remote(&base, "films")).await;

    let (status, list) = common::call("POST", f1, "/films", Some("{\n    'name': 'Anand',\n    'language': 'English'\n  }")).await;
    assert_eq!(status, 200, "{list}");
    let id = list[0]["id"].as_str().unwrap().to_string();
    let (status, list) = common::call("POST", f2, "/films", Some("{'name': 'Sholay', 'language': 'Hindi'}")).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2, "the POST answer lists both replicas' films: {list}");

    for f in [f1, f2] {
        let (status, one) = common::call("GET", f, "/films?name=Anand", None).await;
        assert_eq!((status, one["id"].as_str()), (200, Some(id.as_str())));
        let (status, one) = common::call("GET", f, &format!("/films/{id}"), None).await;
        assert_eq!((status, one["language"].as_str()), (200, Some("English")));
        let (status, one) = common::call("GET", f, "/films?name=Sholay", None).await;
        assert_eq!((status, one["language"].as_str()), (200, Some("Hindi")));
    }
    for r in [r1, r2] {
        let (status, all) = common::call("GET", r, "/ratings", None).await;
        assert_eq!(status, 200);
        let names: Vec<_> = all.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Anand", "Sholay"]);
        assert_eq!(all[0]["id"].as_str(), Some(id.as_str()), "the rating carries the film's id");
        let (status, one) = common::call("GET", r, "/ratings?name=Sholay", None).await;
        assert_eq!((status, one["rating"].as_str()), (200, Some("5")));
    }
    // The store itself: collections are separate, and only JSON objects are records.
    let (status, body) = request_json(Method::GET, &format!("{base}/records/films"), None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap().as_array().unwrap().len(), 2);
    let (status, body) = request_json(Method::GET, &format!("{base}/records/none"), None).await.unwrap();
    assert_eq!((status.as_u16(), &body[..]), (200, &b"[]"[..]));
    let (status, _) = request_json(Method::POST, &format!("{base}/records/films"), Some(&json!([1]))).await.unwrap();
    assert_eq!(status, 400);
    let (status, _) = request_json(Method::GET, &format!("{base}/other"), None).await.unwrap();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn in_memory_replicas_do_not_share() {
    // The seed's behaviour without STORE_URL: each replica has its own records.
    let r1 = start_rating(Records::default()).await;
    let r2 = start_rating(Records::default()).await;
    let (status, _) = common::call("POST", r1, "/ratings", Some("{'name': 'Anand'}")).await;
    assert_eq!(status, 200);
    assert_eq!(common::call("GET", r1, "/ratings?name=Anand", None).await.0, 200);
    assert_eq!(common::call("GET", r2, "/ratings?name=Anand", None).await.0, 404);
}

#[tokio::test]
async fn an_unreachable_store_gives_503_not_stale_answers() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let r = start_rating(Records::remote(&format!("http://{closed}"), "ratings")).await;
    let f = start_film(r, Records::remote(&format!("http://{closed}"), "films")).await;
    let (status, err) = common::call("GET", r, "/ratings", None).await;
    assert_eq!(status, 503);
    assert!(err["error"].as_str().unwrap().contains("record store"), "{err}");
    assert_eq!(common::call("GET", f, "/films?name=x", None).await.0, 503);
    // The rating POST fails with 503, so the film is not created: 502 naming the rating-service.
    let (status, err) = common::call("POST", f, "/films", Some("{'name': 'A', 'language': 'B'}")).await;
    assert_eq!(status, 502, "{err}");
}

#[test]
fn store_url_selects_the_mode() {
    assert!(Records::remote("http://s:7000", "films").is_remote());
    match Records::remote("http://s:7000/", "films") {
        Records::Remote { url } => assert_eq!(url, "http://s:7000/records/films"),
        Records::Memory(_) => unreachable!(),
    }
    assert!(!Records::default().is_remote());
}
