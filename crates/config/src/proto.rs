//! Field names (and proto3 default kinds) of the Envoy v3 messages Legate parses, generated
//! from the descriptors embedded in Envoy 1.40. The reader uses them to tell "not supported by
//! legate" (a real Envoy field Legate does not implement) from "unknown field", and to accept
//! fields explicitly set to their proto3 default.

use crate::reader::Kind::{self, *};

mod transport;
pub(crate) use transport::*;

/// Fields of `envoy.config.bootstrap.v3.Bootstrap`.
pub(crate) const BOOTSTRAP: &[(&str, Kind)] = &[
    ("node", Msg),
    ("node_context_params", Rep),
    ("static_resources", Msg),
    ("dynamic_resources", Msg),
    ("cluster_manager", Msg),
    ("hds_config", Msg),
    ("flags_path", Str),
    ("stats_sinks", Rep),
    ("deferred_stat_options", Msg),
    ("stats_config", Msg),
    ("stats_flush_interval", Msg),
    ("stats_flush_on_admin", Oneof),
    ("stats_eviction_interval", Oneof),
    ("watchdog", Msg),
    ("watchdogs", Msg),
    ("tracing", Msg),
    ("layered_runtime", Msg),
    ("admin", Msg),
    ("overload_manager", Msg),
    ("enable_dispatcher_stats", Bool),
    ("header_prefix", Str),
    ("stats_server_version_override", Msg),
    ("use_tcp_for_dns_lookups", Bool),
    ("dns_resolution_config", Msg),
    ("typed_dns_resolver_config", Msg),
    ("bootstrap_extensions", Rep),
    ("fatal_actions", Rep),
    ("config_sources", Rep),
    ("default_config_source", Msg),
    ("default_socket_interface", Str),
    ("certificate_provider_instances", Map),
    ("inline_headers", Rep),
    ("perf_tracing_file_path", Str),
    ("default_regex_engine", Msg),
    ("xds_delegate_extension", Msg),
    ("xds_config_tracker_extension", Msg),
    ("listener_manager", Msg),
    ("application_log_config", Msg),
    ("grpc_async_client_manager_config", Msg),
    ("memory_allocator_manager", Msg),
    ("enable_worker_cpu_affinity", Bool),
];
/// Fields of `envoy.config.bootstrap.v3.Bootstrap.StaticResources`.
pub(crate) const STATIC_RESOURCES: &[(&str, Kind)] =
    &[("listeners", Rep), ("clusters", Rep), ("secrets", Rep)];
/// Fields of `envoy.config.bootstrap.v3.Admin`.
pub(crate) const ADMIN: &[(&str, Kind)] = &[
    ("access_log", Rep),
    ("access_log_path", Str),
    ("profile_path", Str),
    ("address", Msg),
    ("socket_options", Rep),
    ("ignore_global_conn_limit", Bool),
    ("allow_paths", Rep),
];
/// Fields of `envoy.config.core.v3.Node`.
pub(crate) const NODE: &[(&str, Kind)] = &[
    ("id", Str),
    ("cluster", Str),
    ("metadata", Msg),
    ("dynamic_parameters", Map),
    ("locality", Msg),
    ("user_agent_name", Str),
    ("user_agent_version", Oneof),
    ("user_agent_build_version", Oneof),
    ("extensions", Rep),
    ("client_features", Rep),
    ("listening_addresses", Rep),
];
/// Fields of `envoy.config.core.v3.Locality`.
pub(crate) const LOCALITY: &[(&str, Kind)] = &[("region", Str), ("zone", Str), ("sub_zone", Str)];
/// Fields of `envoy.config.core.v3.Address`.
pub(crate) const ADDRESS: &[(&str, Kind)] = &[
    ("socket_address", Oneof),
    ("pipe", Oneof),
    ("envoy_internal_address", Oneof),
];
/// Fields of `envoy.config.core.v3.SocketAddress`.
pub(crate) const SOCKET_ADDRESS: &[(&str, Kind)] = &[
    ("protocol", Enum("TCP")),
    ("address", Str),
    ("port_value", Oneof),
    ("named_port", Oneof),
    ("resolver_name", Str),
    ("ipv4_compat", Bool),
    ("network_namespace_filepath", Str),
];
/// Fields of `envoy.config.core.v3.CidrRange`.
pub(crate) const CIDR_RANGE: &[(&str, Kind)] = &[("address_prefix", Str), ("prefix_len", Msg)];
/// Fields of `envoy.config.core.v3.HeaderValueOption`.
pub(crate) const HEADER_VALUE_OPTION: &[(&str, Kind)] = &[
    ("header", Msg),
    ("append", Msg),
    ("append_action", Enum("APPEND_IF_EXISTS_OR_ADD")),
    ("keep_empty_value", Bool),
];
/// Fields of `envoy.config.core.v3.HeaderValue`.
pub(crate) const HEADER_VALUE: &[(&str, Kind)] =
    &[("key", Str), ("value", Str), ("raw_value", Str)];
/// Fields of `envoy.config.core.v3.DataSource`.
pub(crate) const DATA_SOURCE: &[(&str, Kind)] = &[
    ("filename", Oneof),
    ("inline_bytes", Oneof),
    ("inline_string", Oneof),
    ("environment_variable", Oneof),
    ("watched_directory", Msg),
];
/// Fields of `envoy.config.core.v3.TypedExtensionConfig`.
pub(crate) const TYPED_EXTENSION_CONFIG: &[(&str, Kind)] = &[("name", Str), ("typed_config", Msg)];
/// Fields of `envoy.config.core.v3.DnsResolutionConfig`.
pub(crate) const DNS_RESOLUTION_CONFIG: &[(&str, Kind)] =
    &[("resolvers", Rep), ("dns_resolver_options", Msg)];
/// Fields of `envoy.config.core.v3.HttpProtocolOptions`.
pub(crate) const CORE_HTTP_PROTOCOL_OPTIONS: &[(&str, Kind)] = &[
    ("idle_timeout", Msg),
    ("max_connection_duration", Msg),
    ("max_connection_duration_jitter", Msg),
    ("max_headers_count", Msg),
    ("max_response_headers_kb", Msg),
    ("max_stream_duration", Msg),
    ("headers_with_underscores_action", Enum("ALLOW")),
    ("max_requests_per_connection", Msg),
];
/// Fields of `envoy.config.core.v3.Http1ProtocolOptions`.
pub(crate) const HTTP1_PROTOCOL_OPTIONS: &[(&str, Kind)] = &[
    ("allow_absolute_url", Msg),
    ("accept_http_10", Bool),
    ("default_host_for_http_10", Str),
    ("header_key_format", Msg),
    ("enable_trailers", Bool),
    ("allow_chunked_length", Bool),
    ("override_stream_error_on_invalid_http_message", Msg),
    ("send_fully_qualified_url", Bool),
    ("use_balsa_parser", Msg),
    ("allow_custom_methods", Bool),
    ("ignore_http_11_upgrade", Rep),
];
/// Fields of `envoy.config.listener.v3.Listener`.
pub(crate) const LISTENER: &[(&str, Kind)] = &[
    ("name", Str),
    ("address", Msg),
    ("additional_addresses", Rep),
    ("stat_prefix", Str),
    ("stats_matcher", Msg),
    ("filter_chains", Rep),
    ("fcds_config", Msg),
    ("filter_chain_matcher", Msg),
    ("use_original_dst", Msg),
    ("default_filter_chain", Msg),
    ("per_connection_buffer_limit_bytes", Msg),
    ("per_connection_buffer_high_watermark_timeout", Msg),
    ("metadata", Msg),
    ("deprecated_v1", Msg),
    ("drain_type", Enum("DEFAULT")),
    ("listener_filters", Rep),
    ("listener_filters_timeout", Msg),
    ("continue_on_listener_filters_timeout", Bool),
    ("transparent", Msg),
    ("freebind", Msg),
    ("socket_options", Rep),
    ("tcp_fast_open_queue_length", Msg),
    ("traffic_direction", Enum("UNSPECIFIED")),
    ("udp_listener_config", Msg),
    ("api_listener", Msg),
    ("connection_balance_config", Msg),
    ("reuse_port", Bool),
    ("enable_reuse_port", Msg),
    ("access_log", Rep),
    ("tcp_backlog_size", Msg),
    ("max_connections_to_accept_per_socket_event", Msg),
    ("bind_to_port", Msg),
    ("internal_listener", Oneof),
    ("enable_mptcp", Bool),
    ("ignore_global_conn_limit", Bool),
    ("bypass_overload_manager", Bool),
    ("tcp_keepalive", Msg),
];
/// Fields of `envoy.config.listener.v3.FilterChain`.
pub(crate) const FILTER_CHAIN: &[(&str, Kind)] = &[
    ("filter_chain_match", Msg),
    ("filters", Rep),
    ("use_proxy_proto", Msg),
    ("metadata", Msg),
    ("transport_socket", Msg),
    ("transport_socket_connect_timeout", Msg),
    ("name", Str),
];
/// Fields of `envoy.config.listener.v3.Filter`.
pub(crate) const FILTER: &[(&str, Kind)] = &[
    ("name", Str),
    ("typed_config", Oneof),
    ("config_discovery", Oneof),
];
/// Fields of `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`.
pub(crate) const HCM: &[(&str, Kind)] = &[
    ("codec_type", Enum("AUTO")),
    ("stat_prefix", Str),
    ("rds", Oneof),
    ("route_config", Oneof),
    ("scoped_routes", Oneof),
    ("http_filters", Rep),
    ("add_user_agent", Msg),
    ("tracing", Msg),
    ("common_http_protocol_options", Msg),
    ("http1_safe_max_connection_duration", Bool),
    ("http_protocol_options", Msg),
    ("http2_protocol_options", Msg),
    ("http3_protocol_options", Msg),
    ("server_name", Str),
    ("server_header_transformation", Enum("OVERWRITE")),
    ("scheme_header_transformation", Msg),
    ("max_request_headers_kb", Msg),
    ("stream_idle_timeout", Msg),
    ("stream_flush_timeout", Msg),
    ("request_timeout", Msg),
    ("request_headers_timeout", Msg),
    ("drain_timeout", Msg),
    ("drain_timeout_jitter", Msg),
    ("delayed_close_timeout", Msg),
    ("access_log", Rep),
    ("access_log_flush_interval", Msg),
    ("flush_access_log_on_new_request", Bool),
    ("access_log_options", Msg),
    ("use_remote_address", Msg),
    ("xff_num_trusted_hops", Num),
    ("original_ip_detection_extensions", Rep),
    ("early_header_mutation_extensions", Rep),
    ("internal_address_config", Msg),
    ("skip_xff_append", Bool),
    ("via", Str),
    ("generate_request_id", Msg),
    ("preserve_external_request_id", Bool),
    ("always_set_request_id_in_response", Bool),
    ("forward_client_cert_details", Enum("SANITIZE")),
    ("set_current_client_cert_details", Msg),
    ("forward_client_cert_matcher", Msg),
    ("proxy_100_continue", Bool),
    ("represent_ipv4_remote_address_as_ipv4_mapped_ipv6", Bool),
    ("upgrade_configs", Rep),
    ("normalize_path", Msg),
    ("merge_slashes", Bool),
    (
        "path_with_escaped_slashes_action",
        Enum("IMPLEMENTATION_SPECIFIC_DEFAULT"),
    ),
    ("request_id_extension", Msg),
    ("local_reply_config", Msg),
    ("strip_matching_host_port", Bool),
    ("strip_any_host_port", Oneof),
    ("stream_error_on_invalid_http_message", Msg),
    ("path_normalization_options", Msg),
    ("strip_trailing_host_dot", Bool),
    ("proxy_status_config", Msg),
    ("typed_header_validation_config", Msg),
    ("append_x_forwarded_port", Bool),
    ("append_local_overload", Bool),
    ("add_proxy_protocol_connection_state", Msg),
    ("forward_proto_config", Msg),
    ("record_route_resolution_stats", Bool),
];
/// Fields of `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.InternalAddressConfig`.
pub(crate) const INTERNAL_ADDRESS_CONFIG: &[(&str, Kind)] =
    &[("unix_sockets", Bool), ("cidr_ranges", Rep)];
/// Fields of `envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter`.
pub(crate) const HTTP_FILTER: &[(&str, Kind)] = &[
    ("name", Str),
    ("typed_config", Oneof),
    ("config_discovery", Oneof),
    ("is_optional", Bool),
    ("disabled", Bool),
];
/// Fields of `envoy.extensions.filters.http.router.v3.Router`.
pub(crate) const ROUTER: &[(&str, Kind)] = &[
    ("dynamic_stats", Msg),
    ("start_child_span", Bool),
    ("upstream_log", Rep),
    ("upstream_log_options", Msg),
    ("suppress_envoy_headers", Bool),
    ("strict_check_headers", Rep),
    ("respect_expected_rq_timeout", Bool),
    ("suppress_grpc_request_failure_code_stats", Bool),
    ("upstream_http_filters", Rep),
    ("reject_connect_request_early_data", Msg),
];
/// Fields of `envoy.config.route.v3.RouteConfiguration`.
pub(crate) const ROUTE_CONFIGURATION: &[(&str, Kind)] = &[
    ("name", Str),
    ("virtual_hosts", Rep),
    ("vhds", Msg),
    ("internal_only_headers", Rep),
    ("response_headers_to_add", Rep),
    ("response_headers_to_remove", Rep),
    ("request_headers_to_add", Rep),
    ("request_headers_to_remove", Rep),
    ("most_specific_header_mutations_wins", Bool),
    ("validate_clusters", Msg),
    ("max_direct_response_body_size_bytes", Msg),
    ("cluster_specifier_plugins", Rep),
    ("request_mirror_policies", Rep),
    ("ignore_port_in_host_matching", Bool),
    ("vhost_header", Str),
    ("ignore_path_parameters_in_path_matching", Bool),
    ("typed_per_filter_config", Map),
    ("metadata", Msg),
    ("route_specifiers", Rep),
];
/// Fields of `envoy.config.route.v3.VirtualHost`.
pub(crate) const VIRTUAL_HOST: &[(&str, Kind)] = &[
    ("name", Str),
    ("domains", Rep),
    ("routes", Rep),
    ("matcher", Msg),
    ("require_tls", Enum("NONE")),
    ("virtual_clusters", Rep),
    ("rate_limits", Rep),
    ("request_headers_to_add", Rep),
    ("request_headers_to_remove", Rep),
    ("response_headers_to_add", Rep),
    ("response_headers_to_remove", Rep),
    ("cors", Msg),
    ("typed_per_filter_config", Map),
    ("include_request_attempt_count", Bool),
    ("include_attempt_count_in_response", Bool),
    ("retry_policy", Msg),
    ("retry_policy_typed_config", Msg),
    ("hedge_policy", Msg),
    ("include_is_timeout_retry_header", Bool),
    ("per_request_buffer_limit_bytes", Msg),
    ("request_body_buffer_limit", Msg),
    ("request_mirror_policies", Rep),
    ("metadata", Msg),
    ("route_specifiers", Rep),
];
/// Fields of `envoy.config.route.v3.Route`.
pub(crate) const ROUTE: &[(&str, Kind)] = &[
    ("name", Str),
    ("match", Msg),
    ("route", Oneof),
    ("redirect", Oneof),
    ("direct_response", Oneof),
    ("filter_action", Oneof),
    ("non_forwarding_action", Oneof),
    ("metadata", Msg),
    ("decorator", Msg),
    ("typed_per_filter_config", Map),
    ("request_headers_to_add", Rep),
    ("request_headers_to_remove", Rep),
    ("response_headers_to_add", Rep),
    ("response_headers_to_remove", Rep),
    ("tracing", Msg),
    ("per_request_buffer_limit_bytes", Msg),
    ("stat_prefix", Str),
    ("request_body_buffer_limit", Msg),
    ("route_specifiers", Rep),
];
/// Fields of `envoy.config.route.v3.RouteMatch`.
pub(crate) const ROUTE_MATCH: &[(&str, Kind)] = &[
    ("prefix", Oneof),
    ("path", Oneof),
    ("safe_regex", Oneof),
    ("connect_matcher", Oneof),
    ("path_separated_prefix", Oneof),
    ("path_match_policy", Oneof),
    ("case_sensitive", Msg),
    ("runtime_fraction", Msg),
    ("headers", Rep),
    ("query_parameters", Rep),
    ("cookies", Rep),
    ("grpc", Msg),
    ("tls_context", Msg),
    ("dynamic_metadata", Rep),
    ("filter_state", Rep),
];
/// Fields of `envoy.config.route.v3.RouteAction`.
pub(crate) const ROUTE_ACTION: &[(&str, Kind)] = &[
    ("cluster", Oneof),
    ("cluster_header", Oneof),
    ("weighted_clusters", Oneof),
    ("cluster_specifier_plugin", Oneof),
    ("inline_cluster_specifier_plugin", Oneof),
    (
        "cluster_not_found_response_code",
        Enum("SERVICE_UNAVAILABLE"),
    ),
    ("metadata_match", Msg),
    ("prefix_rewrite", Str),
    ("regex_rewrite", Msg),
    ("path_rewrite_policy", Msg),
    ("path_rewrite", Str),
    ("host_rewrite_literal", Oneof),
    ("auto_host_rewrite", Oneof),
    ("host_rewrite_header", Oneof),
    ("host_rewrite_path_regex", Oneof),
    ("host_rewrite", Oneof),
    ("append_x_forwarded_host", Bool),
    ("timeout", Msg),
    ("idle_timeout", Msg),
    ("flush_timeout", Msg),
    ("early_data_policy", Msg),
    ("retry_policy", Msg),
    ("retry_policy_typed_config", Msg),
    ("request_mirror_policies", Rep),
    ("priority", Enum("DEFAULT")),
    ("rate_limits", Rep),
    ("include_vh_rate_limits", Msg),
    ("hash_policy", Rep),
    ("cors", Msg),
    ("max_grpc_timeout", Msg),
    ("grpc_timeout_offset", Msg),
    ("upgrade_configs", Rep),
    ("internal_redirect_policy", Msg),
    (
        "internal_redirect_action",
        Enum("PASS_THROUGH_INTERNAL_REDIRECT"),
    ),
    ("max_internal_redirects", Msg),
    ("hedge_policy", Msg),
    ("max_stream_duration", Msg),
];
/// Fields of `envoy.config.route.v3.RouteAction.MaxStreamDuration`.
pub(crate) const MAX_STREAM_DURATION: &[(&str, Kind)] = &[
    ("max_stream_duration", Msg),
    ("grpc_timeout_header_max", Msg),
    ("grpc_timeout_header_offset", Msg),
];
/// Fields of `envoy.config.route.v3.WeightedCluster`.
pub(crate) const WEIGHTED_CLUSTER: &[(&str, Kind)] = &[
    ("clusters", Rep),
    ("total_weight", Msg),
    ("runtime_key_prefix", Str),
    ("header_name", Oneof),
    ("use_hash_policy", Oneof),
];
/// Fields of `envoy.config.route.v3.WeightedCluster.ClusterWeight`.
pub(crate) const CLUSTER_WEIGHT: &[(&str, Kind)] = &[
    ("name", Str),
    ("cluster_header", Str),
    ("weight", Msg),
    ("metadata_match", Msg),
    ("request_headers_to_add", Rep),
    ("request_headers_to_remove", Rep),
    ("response_headers_to_add", Rep),
    ("response_headers_to_remove", Rep),
    ("typed_per_filter_config", Map),
    ("host_rewrite_literal", Oneof),
];
/// Fields of `envoy.config.route.v3.RouteAction.HashPolicy`.
pub(crate) const HASH_POLICY: &[(&str, Kind)] = &[
    ("header", Oneof),
    ("cookie", Oneof),
    ("connection_properties", Oneof),
    ("query_parameter", Oneof),
    ("filter_state", Oneof),
    ("terminal", Bool),
];
/// Fields of `envoy.config.route.v3.RouteAction.HashPolicy.Header`.
pub(crate) const HASH_POLICY_HEADER: &[(&str, Kind)] =
    &[("header_name", Str), ("regex_rewrite", Msg)];
/// Fields of `envoy.config.route.v3.RouteAction.HashPolicy.Cookie`.
pub(crate) const HASH_POLICY_COOKIE: &[(&str, Kind)] = &[
    ("name", Str),
    ("ttl", Msg),
    ("path", Str),
    ("attributes", Rep),
];
/// Fields of `envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties`.
pub(crate) const HASH_POLICY_CONNECTION_PROPERTIES: &[(&str, Kind)] = &[("source_ip", Bool)];
/// Fields of `envoy.config.route.v3.RouteAction.HashPolicy.QueryParameter`.
pub(crate) const HASH_POLICY_QUERY_PARAMETER: &[(&str, Kind)] = &[("name", Str)];
/// Fields of `envoy.config.route.v3.RedirectAction`.
pub(crate) const REDIRECT_ACTION: &[(&str, Kind)] = &[
    ("https_redirect", Oneof),
    ("scheme_redirect", Oneof),
    ("host_redirect", Str),
    ("port_redirect", Num),
    ("path_redirect", Oneof),
    ("prefix_rewrite", Oneof),
    ("regex_rewrite", Oneof),
    ("path_rewrite", Oneof),
    ("response_code", Enum("MOVED_PERMANENTLY")),
    ("strip_query", Bool),
];
/// Fields of `envoy.config.route.v3.DirectResponseAction`.
pub(crate) const DIRECT_RESPONSE_ACTION: &[(&str, Kind)] =
    &[("status", Num), ("body", Msg), ("body_format", Msg)];
/// Fields of `envoy.config.route.v3.HeaderMatcher`.
pub(crate) const HEADER_MATCHER: &[(&str, Kind)] = &[
    ("name", Str),
    ("exact_match", Oneof),
    ("safe_regex_match", Oneof),
    ("range_match", Oneof),
    ("present_match", Oneof),
    ("prefix_match", Oneof),
    ("suffix_match", Oneof),
    ("contains_match", Oneof),
    ("string_match", Oneof),
    ("invert_match", Bool),
    ("treat_missing_header_as_empty", Bool),
];
/// Fields of `envoy.config.route.v3.QueryParameterMatcher`.
pub(crate) const QUERY_PARAMETER_MATCHER: &[(&str, Kind)] = &[
    ("name", Str),
    ("string_match", Oneof),
    ("present_match", Oneof),
];
/// Fields of `envoy.type.matcher.v3.StringMatcher`.
pub(crate) const STRING_MATCHER: &[(&str, Kind)] = &[
    ("exact", Oneof),
    ("prefix", Oneof),
    ("suffix", Oneof),
    ("safe_regex", Oneof),
    ("contains", Oneof),
    ("custom", Oneof),
    ("ignore_case", Bool),
];
/// Fields of `envoy.type.matcher.v3.RegexMatcher`.
pub(crate) const REGEX_MATCHER: &[(&str, Kind)] = &[("google_re2", Oneof), ("regex", Str)];
/// Fields of `envoy.type.matcher.v3.RegexMatchAndSubstitute`.
pub(crate) const REGEX_MATCH_AND_SUBSTITUTE: &[(&str, Kind)] =
    &[("pattern", Msg), ("substitution", Str)];
/// Fields of `envoy.type.v3.Int64Range`.
pub(crate) const INT64_RANGE: &[(&str, Kind)] = &[("start", Num), ("end", Num)];
/// Fields of `envoy.type.v3.Percent`.
pub(crate) const PERCENT: &[(&str, Kind)] = &[("value", Num)];
/// Fields of `envoy.config.cluster.v3.Cluster`.
pub(crate) const CLUSTER: &[(&str, Kind)] = &[
    ("transport_socket_matches", Rep),
    ("transport_socket_matcher", Msg),
    ("name", Str),
    ("alt_stat_name", Str),
    ("stats_matcher", Msg),
    ("type", Oneof),
    ("cluster_type", Oneof),
    ("eds_cluster_config", Msg),
    ("connect_timeout", Msg),
    ("per_connection_buffer_limit_bytes", Msg),
    ("per_connection_buffer_high_watermark_timeout", Msg),
    ("lb_policy", Enum("ROUND_ROBIN")),
    ("load_assignment", Msg),
    ("health_checks", Rep),
    ("max_requests_per_connection", Msg),
    ("circuit_breakers", Msg),
    ("upstream_http_protocol_options", Msg),
    ("common_http_protocol_options", Msg),
    ("http_protocol_options", Msg),
    ("http2_protocol_options", Msg),
    ("typed_extension_protocol_options", Map),
    ("dns_refresh_rate", Msg),
    ("dns_jitter", Msg),
    ("dns_failure_refresh_rate", Msg),
    ("respect_dns_ttl", Bool),
    ("dns_lookup_family", Enum("AUTO")),
    ("dns_resolvers", Rep),
    ("use_tcp_for_dns_lookups", Bool),
    ("dns_resolution_config", Msg),
    ("typed_dns_resolver_config", Msg),
    ("wait_for_warm_on_init", Msg),
    ("outlier_detection", Msg),
    ("cleanup_interval", Msg),
    ("upstream_bind_config", Msg),
    ("lb_subset_config", Msg),
    ("ring_hash_lb_config", Oneof),
    ("maglev_lb_config", Oneof),
    ("original_dst_lb_config", Oneof),
    ("least_request_lb_config", Oneof),
    ("round_robin_lb_config", Oneof),
    ("common_lb_config", Msg),
    ("transport_socket", Msg),
    ("metadata", Msg),
    ("protocol_selection", Enum("USE_CONFIGURED_PROTOCOL")),
    ("upstream_connection_options", Msg),
    ("close_connections_on_host_health_failure", Bool),
    ("ignore_health_on_host_removal", Bool),
    ("filters", Rep),
    ("load_balancing_policy", Msg),
    ("lrs_server", Msg),
    ("lrs_report_endpoint_metrics", Rep),
    ("track_timeout_budgets", Bool),
    ("upstream_config", Msg),
    ("track_cluster_stats", Msg),
    ("preconnect_policy", Msg),
    ("connection_pool_per_downstream_connection", Bool),
    ("queuing_policies", Msg),
];
/// Fields of `envoy.config.cluster.v3.OutlierDetection`.
pub(crate) const OUTLIER_DETECTION: &[(&str, Kind)] = &[
    ("consecutive_5xx", Msg),
    ("interval", Msg),
    ("base_ejection_time", Msg),
    ("max_ejection_percent", Msg),
    ("enforcing_consecutive_5xx", Msg),
    ("enforcing_success_rate", Msg),
    ("success_rate_minimum_hosts", Msg),
    ("success_rate_request_volume", Msg),
    ("success_rate_stdev_factor", Msg),
    ("consecutive_gateway_failure", Msg),
    ("enforcing_consecutive_gateway_failure", Msg),
    ("split_external_local_origin_errors", Bool),
    ("consecutive_local_origin_failure", Msg),
    ("enforcing_consecutive_local_origin_failure", Msg),
    ("enforcing_local_origin_success_rate", Msg),
    ("failure_percentage_threshold", Msg),
    ("enforcing_failure_percentage", Msg),
    ("enforcing_failure_percentage_local_origin", Msg),
    ("failure_percentage_minimum_hosts", Msg),
    ("failure_percentage_request_volume", Msg),
    ("max_ejection_time", Msg),
    ("max_ejection_time_jitter", Msg),
    ("successful_active_health_check_uneject_host", Msg),
    ("monitors", Rep),
    ("always_eject_one_host", Msg),
    ("detect_degraded_hosts", Bool),
];
/// Fields of `envoy.config.core.v3.HealthCheck`.
pub(crate) const HEALTH_CHECK: &[(&str, Kind)] = &[
    ("timeout", Msg),
    ("interval", Msg),
    ("initial_jitter", Msg),
    ("interval_jitter", Msg),
    ("interval_jitter_percent", Num),
    ("unhealthy_threshold", Msg),
    ("healthy_threshold", Msg),
    ("alt_port", Msg),
    ("reuse_connection", Msg),
    ("http_health_check", Oneof),
    ("tcp_health_check", Oneof),
    ("grpc_health_check", Oneof),
    ("custom_health_check", Oneof),
    ("no_traffic_interval", Msg),
    ("no_traffic_healthy_interval", Msg),
    ("unhealthy_interval", Msg),
    ("unhealthy_edge_interval", Msg),
    ("healthy_edge_interval", Msg),
    ("event_log_path", Str),
    ("event_logger", Rep),
    ("event_service", Msg),
    ("always_log_health_check_failures", Bool),
    ("always_log_health_check_success", Bool),
    ("tls_options", Msg),
    ("transport_socket_match_criteria", Msg),
];
/// Fields of `envoy.config.core.v3.HealthCheck.HttpHealthCheck`.
pub(crate) const HTTP_HEALTH_CHECK: &[(&str, Kind)] = &[
    ("host", Str),
    ("path", Str),
    ("send", Msg),
    ("receive", Rep),
    ("response_buffer_size", Msg),
    ("request_headers_to_add", Rep),
    ("request_headers_to_remove", Rep),
    ("expected_statuses", Rep),
    ("retriable_statuses", Rep),
    ("codec_client_type", Enum("HTTP1")),
    ("service_name_matcher", Msg),
    ("method", Enum("METHOD_UNSPECIFIED")),
];
/// Fields of `envoy.config.core.v3.HealthCheck.TcpHealthCheck`.
pub(crate) const TCP_HEALTH_CHECK: &[(&str, Kind)] = &[
    ("send", Msg),
    ("receive", Rep),
    ("proxy_protocol_config", Msg),
];
/// Fields of `envoy.config.core.v3.HealthCheck.GrpcHealthCheck`.
pub(crate) const GRPC_HEALTH_CHECK: &[(&str, Kind)] = &[
    ("service_name", Str),
    ("authority", Str),
    ("initial_metadata", Rep),
];
/// Fields of `envoy.config.core.v3.HealthCheck.Payload`.
pub(crate) const PAYLOAD: &[(&str, Kind)] = &[("text", Oneof), ("binary", Oneof)];
/// Fields of `envoy.config.cluster.v3.Cluster.LeastRequestLbConfig`.
pub(crate) const LEAST_REQUEST_LB_CONFIG: &[(&str, Kind)] = &[
    ("choice_count", Msg),
    ("active_request_bias", Msg),
    ("slow_start_config", Msg),
];
/// Fields of `envoy.config.cluster.v3.Cluster.RingHashLbConfig`.
pub(crate) const RING_HASH_LB_CONFIG: &[(&str, Kind)] = &[
    ("minimum_ring_size", Msg),
    ("hash_function", Enum("XX_HASH")),
    ("maximum_ring_size", Msg),
];
/// Fields of `envoy.config.cluster.v3.Cluster.MaglevLbConfig`.
pub(crate) const MAGLEV_LB_CONFIG: &[(&str, Kind)] = &[("table_size", Msg)];
/// Fields of `envoy.config.cluster.v3.Cluster.CommonLbConfig`.
pub(crate) const COMMON_LB_CONFIG: &[(&str, Kind)] = &[
    ("healthy_panic_threshold", Msg),
    ("zone_aware_lb_config", Oneof),
    ("locality_weighted_lb_config", Oneof),
    ("update_merge_window", Msg),
    ("ignore_new_hosts_until_first_hc", Bool),
    ("close_connections_on_host_set_change", Bool),
    ("consistent_hashing_lb_config", Msg),
    ("override_host_status", Msg),
];
/// Fields of `envoy.config.endpoint.v3.ClusterLoadAssignment`.
pub(crate) const CLUSTER_LOAD_ASSIGNMENT: &[(&str, Kind)] = &[
    ("cluster_name", Str),
    ("endpoints", Rep),
    ("named_endpoints", Map),
    ("policy", Msg),
];
/// Fields of `envoy.config.endpoint.v3.LocalityLbEndpoints`.
pub(crate) const LOCALITY_LB_ENDPOINTS: &[(&str, Kind)] = &[
    ("locality", Msg),
    ("metadata", Msg),
    ("lb_endpoints", Rep),
    ("load_balancer_endpoints", Oneof),
    ("leds_cluster_locality_config", Oneof),
    ("load_balancing_weight", Msg),
    ("priority", Num),
    ("proximity", Msg),
];
/// Fields of `envoy.config.endpoint.v3.LbEndpoint`.
pub(crate) const LB_ENDPOINT: &[(&str, Kind)] = &[
    ("endpoint", Oneof),
    ("endpoint_name", Oneof),
    ("health_status", Enum("UNKNOWN")),
    ("metadata", Msg),
    ("load_balancing_weight", Msg),
];
/// Fields of `envoy.config.endpoint.v3.Endpoint`.
pub(crate) const ENDPOINT: &[(&str, Kind)] = &[
    ("address", Msg),
    ("health_check_config", Msg),
    ("hostname", Str),
    ("additional_addresses", Rep),
    ("observability_name", Str),
];
/// Fields of `envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig`.
pub(crate) const CARES_DNS_RESOLVER_CONFIG: &[(&str, Kind)] = &[
    ("resolvers", Rep),
    ("use_resolvers_as_fallback", Bool),
    ("filter_unroutable_families", Bool),
    ("dns_resolver_options", Msg),
    ("udp_max_queries", Msg),
    ("query_timeout_seconds", Msg),
    ("query_tries", Msg),
    ("rotate_nameservers", Bool),
    ("edns0_max_payload_size", Msg),
    ("max_udp_channel_duration", Msg),
    ("reinit_channel_on_timeout", Bool),
    ("qcache_max_ttl", Msg),
];
/// Fields of `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`.
pub(crate) const UPSTREAM_HTTP_PROTOCOL_OPTIONS: &[(&str, Kind)] = &[
    ("common_http_protocol_options", Msg),
    ("upstream_http_protocol_options", Msg),
    ("explicit_http_config", Oneof),
    ("use_downstream_protocol_config", Oneof),
    ("auto_config", Oneof),
    ("http_filters", Rep),
    ("header_validation_config", Msg),
    ("outlier_detection", Msg),
    ("request_mirror_policies", Rep),
    ("hash_policy", Rep),
    ("retry_policy", Msg),
];
/// Fields of `envoy.config.core.v3.UpstreamHttpProtocolOptions`.
pub(crate) const CORE_UPSTREAM_HTTP_PROTOCOL_OPTIONS: &[(&str, Kind)] =
    &[("auto_sni", Bool), ("auto_san_validation", Bool), ("override_auto_sni_header", Str)];
/// Fields of `envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig`.
pub(crate) const EXPLICIT_HTTP_CONFIG: &[(&str, Kind)] = &[
    ("http_protocol_options", Oneof),
    ("http2_protocol_options", Oneof),
    ("http3_protocol_options", Oneof),
];
/// Fields of `envoy.extensions.upstreams.http.v3.HttpProtocolOptions.AutoHttpConfig`.
pub(crate) const AUTO_HTTP_CONFIG: &[(&str, Kind)] = &[
    ("http_protocol_options", Msg),
    ("http2_protocol_options", Msg),
    ("http3_protocol_options", Msg),
    ("alternate_protocols_cache_options", Msg),
];
/// Fields of `envoy.config.core.v3.DnsResolverOptions`.
pub(crate) const DNS_RESOLVER_OPTIONS: &[(&str, Kind)] = &[
    ("use_tcp_for_dns_lookups", Bool),
    ("no_default_search_domain", Bool),
];
