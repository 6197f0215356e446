//! `server.*` stats: liveness, uptime, concurrency, memory, certificate expiry.

use std::time::{Duration, Instant};

use legate_stats::{Gauge, GaugeMode, Store};

/// The process-level gauges Envoy exposes under `server.`.
pub struct ServerStats {
    live: Gauge,
    uptime: Gauge,
    state: Gauge,
    memory_allocated: Gauge,
    memory_heap_size: Gauge,
    memory_physical_size: Gauge,
    days_until_first_cert_expiring: Gauge,
    start: Instant,
}

impl ServerStats {
    /// Creates the gauges; the server starts not live, in state INITIALIZING (2).
    pub fn new(store: &Store, concurrency: usize) -> Self {
        let g = |n: &str| store.gauge(n, GaugeMode::NeverImport);
        g("server.concurrency").set(concurrency as u64);
        g("server.hot_restart_epoch").set(0);
        // Hot restart is disabled: the first generation, without a parent or its connections.
        g("server.hot_restart_generation").set(1);
        g("server.parent_connections").set(0);
        // aws-lc-rs is built without its FIPS module.
        g("server.compilation_settings.fips_mode").set(0);
        // OCSP stapling is refused: no OCSP response ever expires (Envoy leaves it 0 then).
        g("server.seconds_until_first_ocsp_response_expiring").set(0);
        // The bootstrap refuses unknown and work-in-progress fields, there is no xDS, and
        // debug assertions are not compiled into release builds: zero, as Envoy shows then.
        for name in ["static_unknown_fields", "dynamic_unknown_fields", "wip_protos", "debug_assertion_failures"] {
            store.counter(&format!("server.{name}"));
        }
        let state = g("server.state");
        state.set(2);
        let stats = Self {
            live: g("server.live"),
            uptime: g("server.uptime"),
            state,
            memory_allocated: g("server.memory_allocated"),
            memory_heap_size: g("server.memory_heap_size"),
            memory_physical_size: g("server.memory_physical_size"),
            days_until_first_cert_expiring: g("server.days_until_first_cert_expiring"),
            start: Instant::now(),
        };
        stats.refresh_certificate_expiry();
        stats
    }

    /// Marks the server live (state LIVE = 0).
    pub fn set_live(&self) {
        self.live.set(1);
        self.state.set(0);
        self.refresh();
    }

    fn refresh(&self) {
        self.uptime.set(self.start.elapsed().as_secs());
        self.refresh_certificate_expiry();
        let (allocated, heap) = malloc_usage();
        self.memory_allocated.set(allocated);
        self.memory_heap_size.set(heap);
        if let Some(rss) = resident_bytes() {
            self.memory_physical_size.set(rss);
        }
    }

    /// Days until the first certificate of a TLS context expires (`u32::MAX` without any).
    fn refresh_certificate_expiry(&self) {
        let days = legate_upstream::tls::CertificateRegistry::global().days_until_first(std::time::SystemTime::now());
        self.days_until_first_cert_expiring.set(days);
    }

    /// Refreshes uptime, memory and certificate expiry every `period`, forever.
    pub async fn run(self, period: Duration) {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            self.refresh();
        }
    }
}

/// Bytes allocated by the program and bytes the allocator holds, from glibc's mallinfo2.
pub fn malloc_usage() -> (u64, u64) {
    // SAFETY: mallinfo2 only reads allocator statistics.
    let info = unsafe { libc::mallinfo2() };
    let mapped = info.hblkhd as u64;
    (info.uordblks as u64 + mapped, info.arena as u64 + mapped)
}

/// Resident set size from /proc/self/statm.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
