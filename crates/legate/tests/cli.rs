//! The Envoy-compatible command line: validate mode, config errors, version.

mod support;

use support::*;

#[test]
fn validate_mode_accepts_a_good_config() {
    let path = write_config(&two_cluster_config("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap())
        .replace("{listener_port}", "0")
        .replace("{admin_port}", "0"));
    let (code, stdout, stderr) = run_legate(&["--mode", "validate", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout={stdout} stderr={stderr}");
    assert!(stdout.contains("OK"), "{stdout}");
}

#[test]
fn unsupported_field_is_an_error_naming_its_path() {
    let config = two_cluster_config("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap())
        .replace("{listener_port}", "0")
        .replace("{admin_port}", "0")
        .replace("  - name: b\n", "  - name: b\n    outlier_detection: {monitors: [{name: m}]}\n");
    let path = write_config(&config);
    let (code, _, stderr) = run_legate(&["--mode", "validate", "-c", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("static_resources.clusters[1].outlier_detection.monitors"), "{stderr}");
    assert!(stderr.contains("not supported"), "{stderr}");
}

#[test]
fn missing_config_is_an_error() {
    let (code, _, stderr) = run_legate(&[]);
    assert_ne!(code, 0);
    assert!(!stderr.is_empty());
}

#[test]
fn version_flag_prints_a_version() {
    let (code, stdout, _) = run_legate(&["--version"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("version"), "{stdout}");
}
