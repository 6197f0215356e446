use std::time::Duration;

use serde_json::{json, Value};

use super::*;

fn parse(v: Value) -> Result<Option<HealthCheck>> {
    health_checks(Some(&v), "c.health_checks")
}

fn base(extra: Value) -> Value {
    let mut hc = json!({"timeout": "1s", "interval": "2s", "unhealthy_threshold": 3, "healthy_threshold": 2});
    if let (Value::Object(m), Value::Object(e)) = (&mut hc, extra) {
        m.extend(e);
    }
    json!([hc])
}

fn err(extra: Value) -> String {
    parse(base(extra)).unwrap_err().to_string()
}

#[test]
fn http_defaults() {
    let hc = parse(base(json!({"http_health_check": {"path": "/healthz"}})))
        .unwrap()
        .unwrap();
    assert_eq!(hc.timeout, Duration::from_secs(1));
    assert_eq!(hc.interval, Duration::from_secs(2));
    assert_eq!(hc.unhealthy_threshold, 3);
    assert_eq!(hc.healthy_threshold, 2);
    assert!(hc.reuse_connection);
    assert_eq!(hc.alt_port, None);
    assert_eq!(hc.no_traffic_interval, Duration::from_secs(60));
    assert_eq!(hc.no_traffic_healthy_interval, Duration::from_secs(60));
    assert_eq!(hc.unhealthy_interval, Duration::from_secs(2));
    assert_eq!(hc.unhealthy_edge_interval, Duration::from_secs(2));
    assert_eq!(hc.healthy_edge_interval, Duration::from_secs(2));
    assert_eq!(
        (
            hc.initial_jitter,
            hc.interval_jitter,
            hc.interval_jitter_percent
        ),
        (Duration::ZERO, Duration::ZERO, 0)
    );
    assert_eq!(
        hc.checker,
        HealthChecker::Http(HttpHealthCheck {
            host: String::new(),
            path: "/healthz".into(),
            method: "GET".into(),
            expected_statuses: vec![(200, 201)],
            retriable_statuses: vec![],
            request_headers_to_add: vec![],
            request_headers_to_remove: vec![],
            http2: false,
        })
    );
    assert_eq!(parse(json!([])).unwrap(), None);
}

#[test]
fn every_supported_field() {
    let hc = parse(base(json!({
        "initial_jitter": "0.5s", "interval_jitter": "0.1s", "interval_jitter_percent": 10,
        "alt_port": 9000, "reuse_connection": false, "no_traffic_interval": "5s",
        "unhealthy_interval": "3s", "healthy_edge_interval": "0.2s",
        "http_health_check": {"host": "svc.local", "path": "/h", "method": "HEAD",
            "expected_statuses": [{"start": 200, "end": 300}], "retriable_statuses": [{"start": "500", "end": "501"}],
            "codec_client_type": "HTTP1", "request_headers_to_remove": ["User-Agent"],
            "request_headers_to_add": [{"header": {"key": "X-Probe", "value": "50%%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}})))
    .unwrap()
    .unwrap();
    assert_eq!(hc.initial_jitter, Duration::from_millis(500));
    assert_eq!(hc.interval_jitter, Duration::from_millis(100));
    assert_eq!(hc.interval_jitter_percent, 10);
    assert_eq!(hc.alt_port, Some(9000));
    assert!(!hc.reuse_connection);
    assert_eq!(hc.no_traffic_interval, Duration::from_secs(5));
    assert_eq!(
        hc.no_traffic_healthy_interval,
        Duration::from_secs(5),
        "defaults to no_traffic_interval"
    );
    assert_eq!(hc.unhealthy_interval, Duration::from_secs(3));
    assert_eq!(
        hc.unhealthy_edge_interval,
        Duration::from_secs(3),
        "defaults to unhealthy_interval"
    );
    assert_eq!(hc.healthy_edge_interval, Duration::from_millis(200));
    let HealthChecker::Http(h) = hc.checker else {
        panic!("http expected")
    };
    assert_eq!((h.host.as_str(), h.method.as_str()), ("svc.local", "HEAD"));
    assert_eq!(
        h.request_headers_to_add,
        vec![HealthCheckHeader {
            name: "x-probe".into(),
            value: "50%".into(),
            append_action: crate::model::AppendAction::OverwriteIfExistsOrAdd,
            keep_empty_value: false,
        }]
    );
    assert_eq!(h.request_headers_to_remove, vec!["user-agent".to_string()]);
    assert_eq!(h.expected_statuses, vec![(200, 300)]);
    assert_eq!(h.retriable_statuses, vec![(500, 501)]);
}

#[test]
fn tcp_payloads() {
    let hc = parse(base(
        json!({"tcp_health_check": {"send": {"text": "50494e47"},
        "receive": [{"text": "504F"}, {"binary": "Tkc="}]}}),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        hc.checker,
        HealthChecker::Tcp(TcpHealthCheck {
            send: b"PING".to_vec(),
            receive: vec![b"PO".to_vec(), b"NG".to_vec()]
        })
    );
    let hc = parse(base(json!({"tcp_health_check": {}})))
        .unwrap()
        .unwrap();
    assert_eq!(hc.checker, HealthChecker::Tcp(TcpHealthCheck::default()));
}

#[test]
fn errors_match_envoy() {
    let http = json!({"http_health_check": {"path": "/h"}});
    let missing = |field: &str| {
        let mut hc = base(http.clone());
        hc[0].as_object_mut().unwrap().remove(field);
        parse(hc).unwrap_err().to_string()
    };
    assert_eq!(
        missing("timeout"),
        "c.health_checks[0].timeout: value is required"
    );
    assert_eq!(
        missing("interval"),
        "c.health_checks[0].interval: value is required"
    );
    assert_eq!(
        missing("unhealthy_threshold"),
        "c.health_checks[0].unhealthy_threshold: value is required"
    );
    assert_eq!(
        missing("healthy_threshold"),
        "c.health_checks[0].healthy_threshold: value is required"
    );
    assert_eq!(
        missing("http_health_check"),
        "c.health_checks[0]: health_checker is required (http_health_check, tcp_health_check or grpc_health_check)"
    );
    assert_eq!(
        err(json!({"timeout": "0s", "tcp_health_check": {}})),
        "c.health_checks[0].timeout: value must be greater than 0s"
    );
    assert_eq!(
        err(json!({"no_traffic_interval": "0s", "tcp_health_check": {}})),
        "c.health_checks[0].no_traffic_interval: value must be greater than 0s"
    );
    assert_eq!(
        err(json!({"http_health_check": {}})),
        "c.health_checks[0].http_health_check.path: value length must be at least 1 characters"
    );
    assert_eq!(
        err(json!({"http_health_check": {"path": "/h", "expected_statuses": [{"start": 99, "end": 200}]}})),
        "c.health_checks[0].http_health_check.expected_statuses[0]: Invalid http expected status range: expecting start >= 100, but found start=99"
    );
    assert_eq!(
        err(json!({"http_health_check": {"path": "/h", "expected_statuses": [{"start": 200, "end": 601}]}})),
        "c.health_checks[0].http_health_check.expected_statuses[0]: Invalid http expected status range: expecting end <= 600, but found end=601"
    );
    assert_eq!(
        err(json!({"http_health_check": {"path": "/h", "expected_statuses": [{"start": 200, "end": 200}]}})),
        "c.health_checks[0].http_health_check.expected_statuses[0]: Invalid http expected status range: expecting start < end, but found start=200 and end=200"
    );
    assert_eq!(
        err(json!({"http_health_check": {"path": "/h", "method": "CONNECT"}})),
        "c.health_checks[0].http_health_check.method: value must not be in list [CONNECT]"
    );
    assert_eq!(
        err(json!({"tcp_health_check": {"send": {"text": "zz"}}})),
        "c.health_checks[0].tcp_health_check.send.text: invalid hex string 'zz'"
    );
    assert_eq!(
        err(json!({"alt_port": 70000, "tcp_health_check": {}})),
        "c.health_checks[0].alt_port: port 70000 is out of range"
    );
}

#[test]
fn unimplemented_fields_are_refused() {
    let refused = |extra: Value| err(extra);
    assert_eq!(
        refused(json!({"http_health_check": {"path": "/h", "codec_client_type": "HTTP3"}})),
        "c.health_checks[0].http_health_check.codec_client_type: codec_client_type HTTP3 is not supported by legate"
    );
    assert_eq!(
        refused(json!({"grpc_health_check": {"initial_metadata": [{"header": {"key": "a", "value": "%HOSTNAME%"}}]}})),
        "c.health_checks[0].grpc_health_check.initial_metadata[0].header.value: a substitution in a health check header is not supported by legate"
    );
    assert_eq!(
        refused(json!({"custom_health_check": {"name": "x"}})),
        "c.health_checks[0].custom_health_check: not supported by legate"
    );
    assert_eq!(
        refused(json!({"http_health_check": {"path": "/h", "request_headers_to_add": [{"header": {"key": "a", "value": "%HOSTNAME%"}}]}})),
        "c.health_checks[0].http_health_check.request_headers_to_add[0].header.value: a substitution in a health check header is not supported by legate"
    );
    assert_eq!(
        refused(json!({"http_health_check": {"path": "/h", "request_headers_to_add": [{"header": {"key": "host", "value": "b"}}]}})),
        "c.health_checks[0].http_health_check.request_headers_to_add[0].header.key: :-prefixed or host headers may not be modified"
    );
    assert_eq!(
        refused(json!({"http_health_check": {"path": "/h", "request_headers_to_add": [{"header": {"key": "a b", "value": "b"}}]}})),
        "c.health_checks[0].http_health_check.request_headers_to_add[0].header.key: \"a b\" is not a valid header name"
    );
    assert_eq!(
        refused(json!({"http_health_check": {"path": "/h", "request_headers_to_remove": ["host"]}})),
        "c.health_checks[0].http_health_check.request_headers_to_remove[0]: :-prefixed or host headers may not be removed"
    );
    assert_eq!(
        refused(json!({"http_health_check": {"path": "/h", "receive": [{"text": "00"}]}})),
        "c.health_checks[0].http_health_check.receive: not supported by legate"
    );
    assert_eq!(
        refused(json!({"event_log_path": "/tmp/x", "tcp_health_check": {}})),
        "c.health_checks[0].event_log_path: not supported by legate"
    );
    assert_eq!(
        refused(json!({"tls_options": {}, "tcp_health_check": {}})),
        "c.health_checks[0].tls_options: not supported by legate"
    );
    assert_eq!(
        refused(json!({"tcp_health_check": {"proxy_protocol_config": {}}})),
        "c.health_checks[0].tcp_health_check.proxy_protocol_config: not supported by legate"
    );
    let two = json!([{"timeout": "1s", "interval": "1s", "unhealthy_threshold": 1, "healthy_threshold": 1, "tcp_health_check": {}},
        {"timeout": "1s", "interval": "1s", "unhealthy_threshold": 1, "healthy_threshold": 1, "tcp_health_check": {}}]);
    assert_eq!(
        parse(two).unwrap_err().to_string(),
        "c.health_checks[1]: more than one health check per cluster is not supported by legate"
    );
    assert_eq!(
        err(json!({"foo": 1, "tcp_health_check": {}})),
        "c.health_checks[0].foo: unknown field"
    );
}

#[test]
fn grpc_health_check_fields() {
    let hc = parse(base(json!({"grpc_health_check": {}}))).unwrap().unwrap();
    assert_eq!(hc.checker, HealthChecker::Grpc(GrpcHealthCheck::default()));
    let hc = parse(base(json!({"grpc_health_check": {"service_name": "films", "authority": "films.local",
        "initial_metadata": [{"header": {"key": "x-a", "value": "1"}}]}})))
    .unwrap()
    .unwrap();
    let HealthChecker::Grpc(grpc) = hc.checker else { panic!("not gRPC") };
    assert_eq!((grpc.service_name.as_str(), grpc.authority.as_str()), ("films", "films.local"));
    assert_eq!((grpc.initial_metadata[0].name.as_str(), grpc.initial_metadata[0].value.as_str()), ("x-a", "1"));
    assert_eq!(
        err(json!({"grpc_health_check": {"authority": "a\nb"}})),
        "c.health_checks[0].grpc_health_check.authority: \"a\\nb\" contains a NUL, CR or LF character"
    );
    assert_eq!(
        err(json!({"grpc_health_check": {"service": "a"}})),
        "c.health_checks[0].grpc_health_check.service: unknown field"
    );
}

#[test]
fn http2_codec() {
    let hc = parse(base(json!({"http_health_check": {"path": "/h", "codec_client_type": "HTTP2"}}))).unwrap().unwrap();
    let HealthChecker::Http(http) = hc.checker else { panic!("not HTTP") };
    assert!(http.http2);
}
