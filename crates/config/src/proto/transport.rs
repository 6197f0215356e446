//! Field lists of the transport-socket, TLS, filter-chain-match, HTTP/2, gRPC route match,
//! tcp_proxy, upgrade and circuit-breaker messages (see the parent module).

use crate::reader::Kind::{self, *};

/// Fields of `envoy.config.core.v3.TransportSocket`.
pub(crate) const TRANSPORT_SOCKET: &[(&str, Kind)] = &[("name", Str), ("typed_config", Oneof)];
/// Fields of `envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`.
pub(crate) const DOWNSTREAM_TLS_CONTEXT: &[(&str, Kind)] = &[
    ("common_tls_context", Msg),
    ("require_client_certificate", Msg),
    ("require_sni", Msg),
    ("session_ticket_keys", Oneof),
    ("session_ticket_keys_sds_secret_config", Oneof),
    ("disable_stateless_session_resumption", Oneof),
    ("disable_stateful_session_resumption", Bool),
    ("session_timeout", Msg),
    ("ocsp_staple_policy", Enum("LENIENT_STAPLING")),
    ("full_scan_certs_on_sni_mismatch", Msg),
    ("prefer_client_ciphers", Bool),
];
/// Fields of `envoy.extensions.transport_sockets.tls.v3.CommonTlsContext`.
pub(crate) const COMMON_TLS_CONTEXT: &[(&str, Kind)] = &[
    ("tls_params", Msg),
    ("tls_certificates", Rep),
    ("tls_certificate_sds_secret_configs", Rep),
    ("tls_certificate_provider_instance", Msg),
    ("custom_tls_certificate_selector", Msg),
    ("tls_certificate_certificate_provider", Msg),
    ("tls_certificate_certificate_provider_instance", Msg),
    ("validation_context", Oneof),
    ("validation_context_sds_secret_config", Oneof),
    ("combined_validation_context", Oneof),
    ("validation_context_certificate_provider", Oneof),
    ("validation_context_certificate_provider_instance", Oneof),
    ("alpn_protocols", Rep),
    ("custom_handshaker", Msg),
    ("key_log", Msg),
];
/// Fields of `envoy.extensions.transport_sockets.tls.v3.TlsCertificate`.
pub(crate) const TLS_CERTIFICATE: &[(&str, Kind)] = &[
    ("certificate_chain", Msg),
    ("private_key", Msg),
    ("pkcs12", Msg),
    ("watched_directory", Msg),
    ("private_key_provider", Msg),
    ("password", Msg),
    ("ocsp_staple", Msg),
    ("signed_certificate_timestamp", Rep),
];
/// Fields of `envoy.extensions.transport_sockets.tls.v3.TlsParameters`.
pub(crate) const TLS_PARAMETERS: &[(&str, Kind)] = &[
    ("tls_minimum_protocol_version", Enum("TLS_AUTO")),
    ("tls_maximum_protocol_version", Enum("TLS_AUTO")),
    ("cipher_suites", Rep),
    ("ecdh_curves", Rep),
    ("signature_algorithms", Rep),
    ("compliance_policies", Rep),
];
/// Fields of `envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext`.
pub(crate) const CERTIFICATE_VALIDATION_CONTEXT: &[(&str, Kind)] = &[
    ("trusted_ca", Msg),
    ("ca_certificate_provider_instance", Msg),
    ("system_root_certs", Msg),
    ("watched_directory", Msg),
    ("verify_certificate_spki", Rep),
    ("verify_certificate_hash", Rep),
    ("match_typed_subject_alt_names", Rep),
    ("match_subject_alt_names", Rep),
    ("require_signed_certificate_timestamp", Msg),
    ("crl", Msg),
    ("allow_expired_certificate", Bool),
    ("trust_chain_verification", Enum("VERIFY_TRUST_CHAIN")),
    ("custom_validator_config", Msg),
    ("only_verify_leaf_cert_crl", Bool),
    ("max_verify_depth", Msg),
];
/// Fields of `envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher`.
pub(crate) const SUBJECT_ALT_NAME_MATCHER: &[(&str, Kind)] =
    &[("san_type", Enum("SAN_TYPE_UNSPECIFIED")), ("matcher", Msg), ("oid", Str)];
/// Fields of `envoy.config.core.v3.Http2ProtocolOptions`.
pub(crate) const HTTP2_PROTOCOL_OPTIONS: &[(&str, Kind)] = &[
    ("hpack_table_size", Msg),
    ("max_concurrent_streams", Msg),
    ("initial_stream_window_size", Msg),
    ("initial_connection_window_size", Msg),
    ("allow_connect", Bool),
    ("allow_metadata", Bool),
    ("max_outbound_frames", Msg),
    ("max_outbound_control_frames", Msg),
    ("max_consecutive_inbound_frames_with_empty_payload", Msg),
    ("max_inbound_priority_frames_per_stream", Msg),
    ("max_inbound_window_update_frames_per_data_frame_sent", Msg),
    ("stream_error_on_invalid_http_messaging", Bool),
    ("override_stream_error_on_invalid_http_message", Msg),
    ("custom_settings_parameters", Rep),
    ("connection_keepalive", Msg),
    ("use_oghttp2_codec", Msg),
    ("max_metadata_size", Msg),
    ("enable_huffman_encoding", Msg),
];
/// Fields of `envoy.config.route.v3.RouteMatch.GrpcRouteMatchOptions`.
pub(crate) const GRPC_ROUTE_MATCH_OPTIONS: &[(&str, Kind)] = &[];
/// Fields of `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`.
pub(crate) const TCP_PROXY: &[(&str, Kind)] = &[
    ("stat_prefix", Str),
    ("cluster", Oneof),
    ("weighted_clusters", Oneof),
    ("on_demand", Msg),
    ("metadata_match", Msg),
    ("idle_timeout", Msg),
    ("downstream_idle_timeout", Msg),
    ("upstream_idle_timeout", Msg),
    ("access_log", Rep),
    ("max_connect_attempts", Msg),
    ("backoff_options", Msg),
    ("hash_policy", Rep),
    ("tunneling_config", Msg),
    ("max_downstream_connection_duration", Msg),
    ("access_log_flush_interval", Msg),
    ("flush_access_log_on_connected", Bool),
    ("access_log_options", Msg),
    ("proxy_protocol_tlvs", Rep),
    ("max_early_data_bytes", Msg),
];
/// Fields of `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster`.
pub(crate) const TCP_WEIGHTED_CLUSTER: &[(&str, Kind)] = &[("clusters", Rep)];
/// Fields of `...TcpProxy.WeightedCluster.ClusterWeight`.
pub(crate) const TCP_CLUSTER_WEIGHT: &[(&str, Kind)] = &[("name", Str), ("weight", Num), ("metadata_match", Msg)];
/// Fields of `envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`.
pub(crate) const UPSTREAM_TLS_CONTEXT: &[(&str, Kind)] = &[
    ("common_tls_context", Msg),
    ("sni", Str),
    ("auto_host_sni", Bool),
    ("auto_sni_san_validation", Bool),
    ("allow_renegotiation", Bool),
    ("max_session_keys", Msg),
    ("enforce_rsa_key_usage", Msg),
];
/// Fields of `...HttpConnectionManager.UpgradeConfig`.
pub(crate) const UPGRADE_CONFIG: &[(&str, Kind)] = &[("upgrade_type", Str), ("filters", Rep), ("enabled", Msg)];
/// Fields of `envoy.config.listener.v3.FilterChainMatch`.
pub(crate) const FILTER_CHAIN_MATCH: &[(&str, Kind)] = &[
    ("destination_port", Msg),
    ("prefix_ranges", Rep),
    ("address_suffix", Str),
    ("suffix_len", Msg),
    ("direct_source_prefix_ranges", Rep),
    ("source_type", Enum("ANY")),
    ("source_prefix_ranges", Rep),
    ("source_ports", Rep),
    ("server_names", Rep),
    ("transport_protocol", Str),
    ("application_protocols", Rep),
];
/// Fields of `envoy.config.listener.v3.ListenerFilter`.
pub(crate) const LISTENER_FILTER: &[(&str, Kind)] =
    &[("name", Str), ("typed_config", Oneof), ("config_discovery", Oneof), ("filter_disabled", Msg)];
/// Fields of `envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector`.
pub(crate) const TLS_INSPECTOR: &[(&str, Kind)] =
    &[("enable_ja3_fingerprinting", Msg), ("enable_ja4_fingerprinting", Msg), ("initial_read_buffer_size", Msg), ("max_client_hello_size", Msg)];
/// Fields of `envoy.config.cluster.v3.CircuitBreakers`.
pub(crate) const CIRCUIT_BREAKERS: &[(&str, Kind)] = &[("thresholds", Rep), ("per_host_thresholds", Rep)];
/// Fields of `envoy.config.cluster.v3.CircuitBreakers.Thresholds`.
pub(crate) const CB_THRESHOLDS: &[(&str, Kind)] = &[
    ("priority", Enum("DEFAULT")),
    ("max_connections", Msg),
    ("max_pending_requests", Msg),
    ("max_requests", Msg),
    ("max_retries", Msg),
    ("retry_budget", Msg),
    ("track_remaining", Bool),
    ("max_connection_pools", Msg),
];
/// Fields of `envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget`.
pub(crate) const CB_RETRY_BUDGET: &[(&str, Kind)] = &[("budget_percent", Msg), ("min_retry_concurrency", Msg)];
/// Fields of `envoy.config.route.v3.RetryPolicy`.
pub(crate) const RETRY_POLICY: &[(&str, Kind)] = &[
    ("retry_on", Str),
    ("num_retries", Msg),
    ("per_try_timeout", Msg),
    ("per_try_idle_timeout", Msg),
    ("retry_priority", Msg),
    ("retry_host_predicate", Rep),
    ("retry_options_predicates", Rep),
    ("host_selection_retry_max_attempts", Num),
    ("retriable_status_codes", Rep),
    ("retry_back_off", Msg),
    ("rate_limited_retry_back_off", Msg),
    ("retriable_headers", Rep),
    ("retriable_request_headers", Rep),
];
/// Fields of `envoy.config.route.v3.RetryPolicy.RetryBackOff`.
pub(crate) const RETRY_BACK_OFF: &[(&str, Kind)] = &[("base_interval", Msg), ("max_interval", Msg)];
