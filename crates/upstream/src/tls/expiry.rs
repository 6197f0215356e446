//! When the certificates of Legate's TLS contexts expire, for Envoy's
//! `server.days_until_first_cert_expiring`. As Envoy, a context counts the leaf of each of its
//! certificate chains and every certificate of its `trusted_ca`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::x509;

/// No certificate: the slot of a context without any (or not loaded yet).
const NONE: i64 = i64::MAX;

/// One TLS context's earliest certificate expiry, set again when the context reloads.
#[derive(Debug, Clone)]
pub struct ContextExpiry(Arc<AtomicI64>);

// === impl ContextExpiry ===

impl ContextExpiry {
    /// Notes the certificates the context now uses (DER): the leaves of its chains and its
    /// trusted CAs. Certificates that cannot be parsed are left out.
    pub fn set<'a>(&self, certificates: impl IntoIterator<Item = &'a [u8]>) {
        let earliest = certificates.into_iter().filter_map(x509::not_after).min().unwrap_or(NONE);
        self.0.store(earliest, Ordering::Relaxed);
    }
}

/// The [`ContextExpiry`] of every TLS context built. Contexts are never removed: listeners
/// and clusters live as long as the process (there is no xDS).
#[derive(Debug, Default)]
pub struct CertExpiries {
    contexts: Mutex<Vec<Arc<AtomicI64>>>,
}

// === impl CertExpiries ===

impl CertExpiries {
    /// The process's contexts (listeners and clusters register theirs as they are built).
    pub fn global() -> &'static Self {
        static GLOBAL: OnceLock<CertExpiries> = OnceLock::new();
        GLOBAL.get_or_init(Self::default)
    }

    /// A new context's slot, without certificates until [`ContextExpiry::set`].
    pub fn register(&self) -> ContextExpiry {
        let slot = Arc::new(AtomicI64::new(NONE));
        self.contexts.lock().unwrap_or_else(|e| e.into_inner()).push(slot.clone());
        ContextExpiry(slot)
    }

    /// Envoy's `days_until_first_cert_expiring` at `now`: whole days until the earliest expiry,
    /// 0 once it has passed, and `u32::MAX` without any certificate.
    pub fn days_until_first(&self, now: SystemTime) -> u64 {
        let contexts = self.contexts.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = contexts.iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(NONE);
        if earliest == NONE {
            return u64::from(u32::MAX);
        }
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        u64::try_from(earliest.saturating_sub(now).max(0) / 86_400).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn certificate(expires: (i32, u8, u8)) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(expires.0, expires.1, expires.2);
        params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().der().to_vec()
    }

    #[test]
    fn days_until_the_earliest_expiry_of_any_context() {
        let expiries = CertExpiries::default();
        let at = |days: u64, secs: u64| UNIX_EPOCH + Duration::from_secs(1_893_542_400 - days * 86_400 - secs);
        assert_eq!(expiries.days_until_first(at(0, 0)), u64::from(u32::MAX), "no context");
        let first = expiries.register();
        assert_eq!(expiries.days_until_first(at(0, 0)), u64::from(u32::MAX), "no certificate yet");
        // 2030-01-02 is 1_893_542_400; the other certificates expire later.
        let (early, late) = (certificate((2030, 1, 2)), certificate((2031, 1, 1)));
        first.set([&late[..], &b"not a certificate"[..]]);
        let second = expiries.register();
        second.set([&late[..], &early[..]]);
        assert_eq!(expiries.days_until_first(at(10, 0)), 10);
        assert_eq!(expiries.days_until_first(at(10, 1)), 10);
        assert_eq!(expiries.days_until_first(at(0, 86_399)), 0);
        assert_eq!(expiries.days_until_first(UNIX_EPOCH + Duration::from_secs(1_900_000_000)), 0, "expired");
        // A reload that drops the early certificate.
        second.set([&late[..]]);
        assert_eq!(expiries.days_until_first(at(10, 0)), 10 + 364);
    }
}
