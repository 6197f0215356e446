//! Any text given as a bootstrap (YAML or JSON) is either converted or refused with an error:
//! never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = legate_config::parse_str(text);
    }
});
