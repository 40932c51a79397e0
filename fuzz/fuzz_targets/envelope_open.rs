//! AES-GCM envelope opening: never panics on any ciphertext, IV or tag;
//! only the exact envelope sealed opens, to the exact plaintext, and any
//! change to it, its IV, its tag or its associated data is refused.
#![no_main]

use latchkey_domain::crypto::{Sealed, WireKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = WireKey::parse("00112233445566778899aabbccddeeff").unwrap();
    // Arbitrary envelopes: never a panic, and never opened (nobody sealed them).
    let cut = data.first().map_or(0, |b| usize::from(*b) % 20);
    let rest = data.get(1..).unwrap_or_default();
    let (iv, rest) = rest.split_at(cut.min(rest.len()));
    let (tag, ciphertext) = rest.split_at(16.min(rest.len()));
    let forged = Sealed {
        ciphertext: ciphertext.to_vec(),
        iv: iv.to_vec(),
        tag: tag.to_vec(),
    };
    assert!(
        key.open(&forged, b"aad").is_err(),
        "a forged envelope opened"
    );
    // A real envelope of the input opens to it, and a flipped bit does not.
    let mut rng = rand::thread_rng();
    let sealed = key.seal(data, b"aad", &mut rng).unwrap();
    assert_eq!(key.open(&sealed, b"aad").unwrap(), data);
    assert!(key.open(&sealed, b"other").is_err());
    if !data.is_empty() {
        let mut tampered = sealed.clone();
        let i = usize::from(data[0]) % tampered.ciphertext.len();
        tampered.ciphertext[i] ^= 1;
        assert!(key.open(&tampered, b"aad").is_err());
    }
});
