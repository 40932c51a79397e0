//! IP allowlist parsing: never panics; parsed entries re-parse to the same
//! list (canonical forms are fixed points); an empty list allows all, and a
//! list allows each address it names.
#![no_main]

use latchkey_domain::ip::TrustedIps;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let entries: Vec<&str> = text.split(',').collect();
    let Ok(list) = TrustedIps::parse(&entries, "trusted_ips") else {
        return;
    };
    let again = TrustedIps::parse(&list.to_strings(), "trusted_ips").unwrap();
    assert_eq!(again, list, "canonical entries are a fixed point");
    for entry in list.to_strings() {
        if let Ok(ip) = entry.parse::<std::net::IpAddr>() {
            assert!(list.allows(ip), "{entry} is allowed by its own list");
        }
    }
});
