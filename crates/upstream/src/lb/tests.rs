use std::collections::HashMap;
use std::sync::atomic::Ordering;

use legate_stats::Store;
use xxhash_rust::xxh64::xxh64;

use super::*;

fn host(addr: &str, weight: u32, priority: u32) -> Arc<Host> {
    Arc::new(Host::new(addr.parse().unwrap(), String::new(), weight, priority))
}

fn hosts(weights: &[u32]) -> Vec<Arc<Host>> {
    weights.iter().enumerate().map(|(i, w)| host(&format!("10.0.0.{}:80", i + 1), *w, 0)).collect()
}

fn build(hosts: Vec<Arc<Host>>, policy: LbPolicy) -> (LoadBalancer, ClusterStats) {
    let store = Store::new();
    let stats = ClusterStats::new(&store, "c");
    let hash_stats = HashLbStats::new(&store, "cluster.c.", policy);
    (LoadBalancer::new(&HostSet::new(hosts, 1), policy, 50.0, &hash_stats), stats)
}

fn counts(lb: &LoadBalancer, stats: &ClusterStats, n: usize, hash: impl Fn(usize) -> Option<u64>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for i in 0..n {
        *m.entry(lb.choose(&LbContext { hash: hash(i) }, stats).unwrap().address.to_string()).or_default() += 1;
    }
    m
}

const RING: LbPolicy = LbPolicy::RingHash { minimum_ring_size: 1024, maximum_ring_size: 8 * 1024 * 1024 };
const MAGLEV: LbPolicy = LbPolicy::Maglev { table_size: 65537 };

#[test]
fn round_robin_rotates_exactly() {
    let (lb, stats) = build(hosts(&[1, 1, 1]), LbPolicy::RoundRobin);
    let picks: Vec<_> = (0..6).map(|_| lb.choose(&LbContext::default(), &stats).unwrap().address).collect();
    assert_eq!(picks[0..3], picks[3..6], "period 3");
    assert_ne!(picks[0], picks[1]);
    assert_ne!(picks[1], picks[2]);
    assert_ne!(picks[0], picks[2]);
    assert_eq!(stats.lb_healthy_panic.value(), 0);
}

#[test]
fn weighted_round_robin_follows_weights_smoothly() {
    let (lb, stats) = build(hosts(&[1, 3]), LbPolicy::RoundRobin);
    let c = counts(&lb, &stats, 400, |_| None);
    assert_eq!(c["10.0.0.1:80"], 100);
    assert_eq!(c["10.0.0.2:80"], 300);
    // EDF interleaves: the light host never gets two picks in a row.
    let picks: Vec<_> = (0..40).map(|_| lb.choose(&LbContext::default(), &stats).unwrap().weight).collect();
    assert!(picks.windows(2).all(|w| !(w[0] == 1 && w[1] == 1)), "{picks:?}");
    let (lb, stats) = build(hosts(&[2, 3, 5]), LbPolicy::RoundRobin);
    let c = counts(&lb, &stats, 1000, |_| None);
    assert_eq!((c["10.0.0.1:80"], c["10.0.0.2:80"], c["10.0.0.3:80"]), (200, 300, 500));
}

#[test]
fn huge_weights_are_scaled_not_exploded() {
    let (lb, stats) = build(hosts(&[1_000_000, 3_000_000, 7]), LbPolicy::RoundRobin);
    let c = counts(&lb, &stats, 65536, |_| None);
    let ratio = c["10.0.0.2:80"] as f64 / c["10.0.0.1:80"] as f64;
    assert!((ratio - 3.0).abs() < 0.01, "{c:?}");
    assert!(c.get("10.0.0.3:80").copied().unwrap_or(0) >= 1);
}

#[test]
fn least_request_prefers_idle_hosts() {
    let hs = hosts(&[1, 1]);
    hs[0].stats.rq_active.store(10, Ordering::Relaxed);
    let (lb, stats) = build(hs, LbPolicy::LeastRequest { choice_count: 2 });
    let c = counts(&lb, &stats, 1000, |_| None);
    // Two random choices: the busy host only wins when both choices are it (1/4).
    assert!((650..850).contains(&c["10.0.0.2:80"]), "{c:?}");
    let hs = hosts(&[1, 1, 1, 1]);
    for h in &hs[1..] {
        h.stats.rq_active.store(5, Ordering::Relaxed);
    }
    let (lb, stats) = build(hs, LbPolicy::LeastRequest { choice_count: 100 });
    let c = counts(&lb, &stats, 200, |_| None);
    assert_eq!(c["10.0.0.1:80"], 200, "with many choices the idle host always wins");
}

#[test]
fn weighted_least_request_divides_weight_by_load() {
    let hs = hosts(&[2, 1]);
    let (lb, stats) = build(hs.clone(), LbPolicy::LeastRequest { choice_count: 2 });
    let c = counts(&lb, &stats, 6000, |_| None);
    assert!((3600..4400).contains(&c["10.0.0.1:80"]), "2:1 when idle: {c:?}");
    hs[0].stats.rq_active.store(3, Ordering::Relaxed); // effective 2/4 vs 1/1
    let c = counts(&lb, &stats, 6000, |_| None);
    assert!((1600..2400).contains(&c["10.0.0.1:80"]), "1:2 when loaded: {c:?}");
}

#[test]
fn random_ignores_weights_like_envoy() {
    let (lb, stats) = build(hosts(&[1, 9]), LbPolicy::Random);
    let c = counts(&lb, &stats, 4000, |_| None);
    assert!((1700..2300).contains(&c["10.0.0.1:80"]), "{c:?}");
}

#[test]
fn empty_set_panics_and_has_no_host() {
    for policy in [LbPolicy::RoundRobin, LbPolicy::Random, RING, MAGLEV, LbPolicy::LeastRequest { choice_count: 2 }] {
        let (lb, stats) = build(vec![], policy);
        assert!(lb.choose(&LbContext::default(), &stats).is_none());
        // Envoy 1.40 counts a panic for a pick from an empty cluster (checked with a STRICT_DNS
        // cluster resolving to nothing).
        assert_eq!(stats.lb_healthy_panic.value(), 1);
    }
}

#[test]
fn lowest_priority_with_hosts_takes_all_traffic() {
    let set = vec![host("10.0.1.1:80", 1, 1), host("10.0.1.2:80", 1, 1), host("10.0.2.1:80", 1, 2)];
    let store = Store::new();
    let stats = ClusterStats::new(&store, "c");
    // Level 0 is configured but empty: its load spills to level 1.
    let lb = LoadBalancer::new(&HostSet::new(set, 3), LbPolicy::RoundRobin, 50.0, &HashLbStats::None);
    let c = counts(&lb, &stats, 100, |_| None);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(c["10.0.1.1:80"] + c["10.0.1.2:80"], 100);
    assert_eq!(stats.lb_healthy_panic.value(), 0);
}

#[test]
fn priority_loads_follow_envoy() {
    // All healthy at P0: 100% there.
    assert_eq!(priority_loads(&[(3, 3), (2, 2)], 50), (vec![100, 0], vec![false, false]));
    // P0 empty: P1 gets everything.
    assert_eq!(priority_loads(&[(0, 0), (2, 2)], 50).0, vec![0, 100]);
    // Envoy's worked example: P0 at 50% healthy -> 70% health; P1 gets the remaining 30%.
    assert_eq!(priority_loads(&[(1, 2), (2, 2)], 50), (vec![70, 30], vec![false, false]));
    // Nothing healthy anywhere: total panic, load by host count.
    assert_eq!(priority_loads(&[(0, 1), (0, 3)], 50), (vec![25, 75], vec![true, true]));
    // Panic disabled and nothing available: P0 takes the (impossible) load, no panic.
    assert_eq!(priority_loads(&[(0, 1)], 0), (vec![100], vec![false]));
    // Low health in one level but 100% overall: no panic.
    assert_eq!(priority_loads(&[(1, 4), (4, 4)], 50).1, vec![false, false]);
}

/// Host picks of real Envoy 1.40 for hosts 127.0.0.1:31811..31813 (digits 1..3), a route hash
/// policy on header `x-k` and values `key-0`..`key-39` (Envoy hashes a header with xxHash64).
const ENVOY_RING: &str = "3112122322132112222133233132112132132121";
const ENVOY_MAGLEV: &str = "1233213123213312123333321221323222313313";
const ENVOY_RING_WEIGHTED: &str = "3112222322332312222133233232112332132332";
const ENVOY_MAGLEV_WEIGHTED: &str = "1233213333233312133333323223323222313313";

fn envoy_picks(policy: LbPolicy, weights: [u32; 3]) -> String {
    let hs: Vec<_> = (0..3).map(|i| host(&format!("127.0.0.1:{}", 31811 + i), weights[i], 0)).collect();
    let (lb, stats) = build(hs, policy);
    (0..40)
        .map(|i| {
            let h = lb.choose(&LbContext { hash: Some(xxh64(format!("key-{i}").as_bytes(), 0)) }, &stats).unwrap();
            char::from(b'1' + (h.address.port() - 31811) as u8)
        })
        .collect()
}

#[test]
fn ring_hash_and_maglev_match_envoy() {
    assert_eq!(envoy_picks(RING, [1, 1, 1]), ENVOY_RING);
    assert_eq!(envoy_picks(MAGLEV, [1, 1, 1]), ENVOY_MAGLEV);
    assert_eq!(envoy_picks(RING, [1, 2, 3]), ENVOY_RING_WEIGHTED);
    assert_eq!(envoy_picks(MAGLEV, [1, 2, 3]), ENVOY_MAGLEV_WEIGHTED);
}

#[test]
fn hash_lb_stats_match_envoy() {
    let store = Store::new();
    let hs: Vec<_> = (0..3).map(|i| host(&format!("127.0.0.1:{}", 31811 + i), [1, 2, 3][i], 0)).collect();
    let set = HostSet::new(hs, 1);
    LoadBalancer::new(&set, RING, 50.0, &HashLbStats::new(&store, "cluster.r.", RING));
    LoadBalancer::new(&set, MAGLEV, 50.0, &HashLbStats::new(&store, "cluster.m.", MAGLEV));
    let g = |n: &str| store.gauge(n, GaugeMode::NeverImport).value();
    // Values Envoy 1.40 reported for the same cluster.
    assert_eq!(g("cluster.r.ring_hash_lb.size"), 1026);
    assert_eq!((g("cluster.r.ring_hash_lb.min_hashes_per_host"), g("cluster.r.ring_hash_lb.max_hashes_per_host")), (171, 513));
    assert_eq!((g("cluster.m.maglev_lb.min_entries_per_host"), g("cluster.m.maglev_lb.max_entries_per_host")), (10923, 32768));
}

/// `max_moved`: keys allowed to move between hosts that stay. Maglev is near minimal; Envoy's
/// ring gives each host `ceil(min_ring_size / n)` entries, so surviving hosts gain or lose
/// entries when `n` changes and some keys move between them (as in Envoy).
fn consistency(policy: LbPolicy, max_moved: usize) {
    let (lb4, stats) = build(hosts(&[1, 1, 1, 1]), policy);
    let key = |i: usize| Some(xxh64(&i.to_le_bytes(), 0));
    let c = counts(&lb4, &stats, 4000, key);
    assert!(c.values().all(|v| *v > 700), "spread: {c:?}");
    let pick = |lb: &LoadBalancer, i: usize| lb.choose(&LbContext { hash: key(i) }, &stats).unwrap().address;
    assert!((0..1000).all(|i| pick(&lb4, i) == pick(&lb4, i)), "same hash, same host");
    // Removing 10.0.0.4 moves only its own keys.
    let (lb3, _) = build(hosts(&[1, 1, 1]), policy);
    let moved = (0..4000).filter(|i| pick(&lb4, *i) != pick(&lb3, *i) && pick(&lb4, *i).to_string() != "10.0.0.4:80").count();
    assert!(moved < max_moved, "{moved} keys moved between surviving hosts");
    // Adding a fifth host takes about a fifth of the keys, from everyone.
    let (lb5, _) = build(hosts(&[1, 1, 1, 1, 1]), policy);
    let taken = (0..4000).filter(|i| pick(&lb4, *i) != pick(&lb5, *i)).count();
    let to_new = (0..4000).filter(|i| pick(&lb5, *i).to_string() == "10.0.0.5:80").count();
    assert!((600..1000).contains(&to_new), "{to_new} keys to the new host");
    assert!(taken - to_new < max_moved, "{} keys moved between old hosts", taken - to_new);
}

#[test]
fn ring_hash_is_consistent() {
    consistency(RING, 600);
}

#[test]
fn maglev_is_consistent() {
    consistency(MAGLEV, 120);
}

#[test]
fn hash_lbs_pick_randomly_without_a_hash() {
    for policy in [RING, MAGLEV] {
        let (lb, stats) = build(hosts(&[1, 1]), policy);
        let c = counts(&lb, &stats, 400, |_| None);
        assert_eq!(c.len(), 2, "{c:?}");
    }
}

#[test]
fn maglev_with_a_non_prime_size_still_fills_the_table() {
    let (lb, stats) = build(hosts(&[1, 1]), LbPolicy::Maglev { table_size: 100 });
    assert!(lb.choose(&LbContext { hash: Some(7) }, &stats).is_some());
}
