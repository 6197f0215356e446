//! The endpoint table: Envoy's help text, the HTML home page and which endpoints need POST.

use std::fmt::Write as _;

/// One admin endpoint as Envoy's help lists it.
pub(crate) struct Endpoint {
    pub path: &'static str,
    pub help: &'static str,
    pub post: bool,
    pub params: &'static [(&'static str, &'static str)],
}

const REGEX_STATS: &str = "Regular expression (Google re2) for filtering stats";
const USED_ONLY: &str = "Only include stats that have been written by system since restart";

/// Legate's endpoints with Envoy 1.40's descriptions, sorted by path as Envoy lists them.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint { path: "/", help: "Admin home page", post: false, params: &[] },
    Endpoint { path: "/certs", help: "print certs on machine", post: false, params: &[] },
    Endpoint {
        path: "/clusters",
        help: "upstream cluster status",
        post: false,
        params: &[("filter", "Regular expression (Google re2) for filtering clusters by name")],
    },
    Endpoint {
        path: "/config_dump",
        help: "dump current Envoy configs",
        post: false,
        params: &[
            ("resource", "The resource to dump"),
            ("mask", "The mask to apply. When both resource and mask are specified, the mask is applied to every element in the desired repeated field so that only a subset of fields are returned. The mask is parsed as a Protobuf::FieldMask"),
            ("name_regex", "Dump only the currently loaded configurations whose names match the specified regex. Can be used with both resource and mask query parameters."),
            ("include_eds", "Dump currently loaded configuration including EDS. See the response definition for more information"),
        ],
    },
    Endpoint {
        path: "/drain_listeners",
        help: "drain listeners",
        post: true,
        params: &[
            ("graceful", "When draining listeners, enter a graceful drain period prior to closing listeners. This behaviour and duration is configurable via server options or CLI"),
            ("skip_exit", "When draining listeners, drain the connections but never stop the listeners. The graceful parameter has no effect when this is set, since the drain period only delays stopping the listeners"),
            ("inboundonly", "Drains all inbound listeners. traffic_direction field in envoy_v3_api_msg_config.listener.v3.Listener is used to determine whether a listener is inbound or outbound."),
        ],
    },
    Endpoint { path: "/healthcheck/fail", help: "cause the server to fail health checks", post: true, params: &[] },
    Endpoint { path: "/healthcheck/ok", help: "cause the server to pass health checks", post: true, params: &[] },
    Endpoint { path: "/help", help: "print out list of admin commands", post: false, params: &[] },
    Endpoint { path: "/hot_restart_version", help: "print the hot restart compatibility version", post: false, params: &[] },
    Endpoint {
        path: "/listeners",
        help: "print listener info",
        post: false,
        params: &[("format", "File format to use; One of (text, json)")],
    },
    Endpoint {
        path: "/logging",
        help: "query/change logging levels",
        post: true,
        params: &[
            ("paths", "Change multiple logging levels by setting to <logger_name1>:<desired_level1>,<logger_name2>:<desired_level2>. If fine grain logging is enabled, use __FILE__ or a glob experision as the logger name. For example, source/common*:warning"),
            ("group", "Change given logger group to desired level, set to <logger_group_name>:<desired_level>. logger_group_name must be a logger name."),
            ("level", "desired logging level, this will change all loggers's level; One of (, trace, debug, info, warning, error, critical, off)"),
        ],
    },
    Endpoint { path: "/memory", help: "print current allocation/heap usage", post: false, params: &[] },
    Endpoint { path: "/quitquitquit", help: "exit the server", post: true, params: &[] },
    Endpoint { path: "/ready", help: "print server state, return 200 if LIVE, otherwise return 503", post: false, params: &[] },
    Endpoint { path: "/reset_counters", help: "reset all counters to zero", post: true, params: &[] },
    Endpoint { path: "/runtime", help: "print runtime values", post: false, params: &[] },
    Endpoint { path: "/server_info", help: "print server version/status information", post: false, params: &[] },
    Endpoint {
        path: "/stats",
        help: "print server stats",
        post: false,
        params: &[
            ("usedonly", USED_ONLY),
            ("filter", REGEX_STATS),
            ("invert_filter", "Invert the filter regex"),
            ("format", "Format to use; One of (html, active-html, text, json)"),
            ("type", "Stat types to include.; One of (All, Counters, Histograms, Gauges, TextReadouts)"),
            ("histogram_buckets", "Histogram bucket display mode; One of (cumulative, disjoint, detailed, summary)"),
        ],
    },
    Endpoint {
        path: "/stats/prometheus",
        help: "print server stats in prometheus format",
        post: false,
        params: &[
            ("usedonly", USED_ONLY),
            ("text_readouts", "Render text_readouts as new gaugues with value 0 (increases Prometheus data size)"),
            ("filter", REGEX_STATS),
            ("invert_filter", "Invert the filter regex"),
            ("histogram_buckets", "Histogram bucket display mode; One of (cumulative, summary)"),
        ],
    },
];

/// The endpoints this server answers (`/drain_listeners` only with a drain hook).
pub(crate) fn endpoints(with_drain: bool) -> impl Iterator<Item = &'static Endpoint> {
    ENDPOINTS
        .iter()
        .filter(move |e| with_drain || e.path != "/drain_listeners")
}

/// `admin commands are:` and one line per endpoint (plus its parameters), as `/help` prints.
pub(crate) fn help_text(with_drain: bool) -> String {
    let mut s = String::from("admin commands are:\n");
    for e in endpoints(with_drain) {
        writeln!(
            s,
            "  {}{}: {}",
            e.path,
            if e.post { " (POST)" } else { "" },
            e.help
        )
        .ok();
        for (name, help) in e.params {
            writeln!(s, "      {name}: {help}").ok();
        }
    }
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

/// The admin home page: a table of the endpoints, links for GET and buttons for POST.
pub(crate) fn home_html(with_drain: bool) -> String {
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n  <title>Envoy Admin</title>\n<style>\n\
.home-table { font-family: sans-serif; font-size: medium; border-collapse: collapse; border-spacing: 0; }\n\
.home-data { text-align: left; padding: 4px; }\n.home-form { margin-bottom: 0; }\n\
.gray { background-color: #dddddd; }\n</style>\n</head>\n<body>\n  <table class='home-table'>\n    <thead>\n\
      <th class='home-data'>Command</th>\n      <th class='home-data'>Description</th>\n    </thead>\n    <tbody>\n",
    );
    for (i, e) in endpoints(with_drain).filter(|e| e.path != "/").enumerate() {
        let name = &e.path[1..];
        let class = if i % 2 == 1 { " class='gray'" } else { "" };
        let cell = if e.post {
            format!("<form action='{name}' method='post' class='home-form'><button>{name}</button></form>")
        } else {
            format!("<a href='{name}'>{name}</a>")
        };
        writeln!(s, "<tr{class}>\n  <td class='home-data'>{cell}</td>\n  <td class='home-data'>{}</td>\n</tr>", escape(e.help)).ok();
    }
    s.push_str("    </tbody>\n  </table>\n</body>\n</html>\n");
    s
}
