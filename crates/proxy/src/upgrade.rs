//! HTTP/1.1 upgrades (`upgrade_configs`, e.g. WebSocket): once the upstream answered 101, the
//! downstream and upstream connections are spliced and bytes flow both ways until either side
//! closes.

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::stats::HcmStats;

/// Waits for both sides to switch protocols, then copies bytes both ways.
pub async fn splice(downstream: OnUpgrade, upstream: OnUpgrade, stats: Arc<HcmStats>) {
    let (down, up) = match tokio::try_join!(downstream, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!("upgrade failed: {e}");
            return;
        }
    };
    stats.downstream_cx_upgrades_total.inc();
    stats.downstream_cx_upgrades_active.inc();
    let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
    if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
        tracing::debug!("upgraded connection ended: {e}");
    }
    stats.downstream_cx_upgrades_active.dec();
}
