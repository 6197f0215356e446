//! `/logging`: Envoy's logger table, its parameters and its replies.
//!
//! Legate keeps Envoy 1.40's logger names and their levels so `/logging` reads the same; every
//! change is passed to the binary's [`LogLevelSetter`], which maps it onto its own logging.

use std::fmt::Write as _;
use std::sync::Mutex;

/// Applies a log-level change: `(None, level)` for every logger (`?level=`), `(Some(name),
/// level)` for one logger. Levels are Envoy's names: trace debug info warning error critical off.
pub type LogLevelSetter = Box<dyn Fn(Option<&str>, &str) + Send + Sync>;

/// Envoy's log levels, in its order.
pub const LEVELS: [&str; 7] = [
    "trace", "debug", "info", "warning", "error", "critical", "off",
];

/// Envoy 1.40's loggers, in the order `/logging` lists them.
pub const LOGGERS: &[&str] = &[
    "a2a",
    "admin",
    "ai_protocol_manager",
    "alternate_protocols_cache",
    "aws",
    "assert",
    "backtrace",
    "basic_auth",
    "cache_filter",
    "client",
    "config",
    "connection",
    "conn_handler",
    "compression",
    "credential_injector",
    "decompression",
    "dns",
    "dubbo",
    "envoy_bug",
    "ext_authz",
    "ext_proc",
    "rocketmq",
    "file",
    "filter",
    "forward_proxy",
    "geolocation",
    "grpc",
    "happy_eyeballs",
    "hc",
    "health_checker",
    "http",
    "http2",
    "hystrix",
    "init",
    "io",
    "jwt",
    "json_rpc",
    "kafka",
    "key_value_store",
    "lua",
    "local_rate_limit",
    "main",
    "matcher",
    "mcp",
    "misc",
    "mongo",
    "multi_connection",
    "notification",
    "oauth2",
    "quic",
    "quic_stream",
    "pool",
    "rate_limit_quota",
    "rbac",
    "rds",
    "redis",
    "router",
    "runtime",
    "stats",
    "secret",
    "sse",
    "tap",
    "testing",
    "thrift",
    "tracing",
    "upstream",
    "udp",
    "wasm",
    "websocket",
    "golang",
    "stats_sinks",
    "dynamic_modules",
    "ip_tagging",
];

const USAGE: &str = "usage: /logging?<name>=<level> (change single level)\n\
usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n\
usage: /logging?level=<level> (change all levels)\n\
usage: /logging?group=<group_name>:<level> (change group of loggers)\n\
levels: trace debug info warning error critical off \n";

/// The logger table and the setter that applies changes.
pub struct Loggers {
    levels: Mutex<Vec<&'static str>>,
    setter: LogLevelSetter,
}

fn parse_level(s: &str) -> Result<&'static str, &'static str> {
    LEVELS
        .iter()
        .copied()
        .find(|l| *l == s)
        .ok_or("unknown logger level")
}

impl Loggers {
    /// Every logger at `initial` (an Envoy level name; unknown names read as `info`).
    pub fn new(initial: &str, setter: LogLevelSetter) -> Self {
        let level = parse_level(initial).unwrap_or("info");
        Self {
            levels: Mutex::new(vec![level; LOGGERS.len()]),
            setter,
        }
    }

    /// Handles `POST /logging` with its (undecoded) query parameters: (success, body).
    pub fn handle(&self, params: &[(String, String)]) -> (bool, String) {
        let mut out = String::new();
        let ok = params.is_empty() || {
            match self.change(params) {
                Ok(()) => true,
                Err(e) => {
                    write!(out, "error: {e}\n\n{USAGE}").ok();
                    false
                }
            }
        };
        out.push_str("active loggers:\n");
        let levels = self.levels.lock().unwrap_or_else(|e| e.into_inner());
        for (name, level) in LOGGERS.iter().zip(levels.iter()) {
            writeln!(out, "  {name}: {level}").ok();
        }
        out.push('\n');
        (ok, out)
    }

    fn change(&self, params: &[(String, String)]) -> Result<(), &'static str> {
        let [(key, value)] = params else {
            return Err("invalid number of parameters");
        };
        if value.is_empty() {
            return Ok(()); // Envoy accepts an empty level and changes nothing
        }
        if key == "level" {
            let level = parse_level(value)?;
            self.levels
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter_mut()
                .for_each(|l| *l = level);
            (self.setter)(None, level);
            return Ok(());
        }
        if key == "group" {
            return Err("group parameter requires fine-grain logging to be enabled");
        }
        let mut changes: Vec<(usize, &'static str)> = Vec::new();
        let pairs: Vec<(&str, &str)> = if key == "paths" {
            let mut v = Vec::new();
            for pair in value.split(',').filter(|p| !p.trim().is_empty()) {
                let (name, level) = pair.split_once(':').unwrap_or((pair, ""));
                if name.is_empty() || level.is_empty() {
                    return Err("empty logger name or empty logger level");
                }
                v.push((name, level));
            }
            v
        } else {
            vec![(key.as_str(), value.as_str())]
        };
        // Envoy parses every level before it looks the names up.
        let parsed: Vec<(&str, &'static str)> = pairs
            .into_iter()
            .map(|(n, l)| parse_level(l).map(|l| (n, l)))
            .collect::<Result<_, _>>()?;
        for (name, level) in parsed {
            changes.push((
                LOGGERS
                    .iter()
                    .position(|l| *l == name)
                    .ok_or("unknown logger name")?,
                level,
            ));
        }
        let mut levels = self.levels.lock().unwrap_or_else(|e| e.into_inner());
        for (i, level) in changes {
            levels[i] = level;
            (self.setter)(Some(LOGGERS[i]), level);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    type Calls = Arc<Mutex<Vec<(Option<String>, String)>>>;

    fn loggers() -> (Loggers, Calls) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let setter: LogLevelSetter = Box::new(move |n, l| {
            c.lock()
                .unwrap()
                .push((n.map(str::to_string), l.to_string()))
        });
        (Loggers::new("warning", setter), calls)
    }

    fn p(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.into(), v.into())]
    }

    #[test]
    fn lists_changes_and_refuses_like_envoy() {
        let (l, calls) = loggers();
        let (ok, body) = l.handle(&[]);
        assert!(ok && body.starts_with("active loggers:\n  a2a: warning\n  admin: warning\n"));
        assert!(body.ends_with("  ip_tagging: warning\n\n"));
        assert!(l
            .handle(&p("level", "debug"))
            .1
            .contains("  upstream: debug\n"));
        let (ok, body) = l.handle(&p("paths", "upstream:error,http:trace"));
        assert!(
            ok && body.contains("  upstream: error\n") && body.contains("  http: trace\n"),
            "{body}"
        );
        let (ok, body) = l.handle(&p("level", "warn"));
        assert!(!ok && body.starts_with("error: unknown logger level\n\nusage: /logging?<name>=<level> (change single level)\n"));
        assert!(body
            .contains("levels: trace debug info warning error critical off \nactive loggers:\n"));
        assert!(l
            .handle(&p("bogus", "info"))
            .1
            .starts_with("error: unknown logger name\n"));
        assert!(l
            .handle(&p("paths", "upstream"))
            .1
            .starts_with("error: empty logger name or empty logger level\n"));
        assert!(l
            .handle(&p("group", "http:debug"))
            .1
            .starts_with("error: group parameter requires fine-grain logging"));
        let two = vec![
            ("level".to_string(), "info".to_string()),
            ("http".to_string(), "info".to_string()),
        ];
        assert!(l
            .handle(&two)
            .1
            .starts_with("error: invalid number of parameters\n"));
        assert!(l.handle(&p("level", "")).0);
        let calls = calls.lock().unwrap();
        assert_eq!(calls[0], (None, "debug".to_string()));
        assert_eq!(
            calls[1],
            (Some("upstream".to_string()), "error".to_string())
        );
        assert_eq!(calls.len(), 3);
    }
}
