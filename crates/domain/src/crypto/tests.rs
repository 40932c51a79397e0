//! Unit tests of `crypto`.

use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn aad() -> Vec<u8> {
    secret_aad("p1", "dev", "/backend", "DB_URL")
}

#[test]
fn sealed_value_opens_with_the_same_key_and_context() {
    let key = WireKey::generate(&mut rng());
    let sealed = key.seal(b"postgres://x", &aad(), &mut rng()).unwrap();
    assert_eq!(sealed.iv.len(), 12);
    assert_eq!(sealed.tag.len(), 16);
    assert_eq!(key.open(&sealed, &aad()).unwrap(), b"postgres://x");
}

#[test]
fn ciphertext_moved_to_another_project_path_or_name_fails() {
    let key = WireKey::generate(&mut rng());
    let sealed = key.seal(b"v", &aad(), &mut rng()).unwrap();
    for other in [
        secret_aad("p2", "dev", "/backend", "DB_URL"),
        secret_aad("p1", "prod", "/backend", "DB_URL"),
        secret_aad("p1", "dev", "/frontend", "DB_URL"),
        secret_aad("p1", "dev", "/backend", "OTHER"),
    ] {
        assert_eq!(key.open(&sealed, &other), Err(CryptoError::Decrypt));
    }
}

#[test]
fn any_tampered_byte_fails() {
    let key = WireKey::generate(&mut rng());
    let sealed = key.seal(b"secret value", &aad(), &mut rng()).unwrap();
    for part in 0..3 {
        let mut bad = sealed.clone();
        let bytes = match part {
            0 => &mut bad.ciphertext,
            1 => &mut bad.iv,
            _ => &mut bad.tag,
        };
        bytes[0] ^= 1;
        assert_eq!(
            key.open(&bad, &aad()),
            Err(CryptoError::Decrypt),
            "part {part}"
        );
    }
}

#[test]
fn wrong_key_fails() {
    let sealed = WireKey::generate(&mut rng())
        .seal(b"v", &aad(), &mut rng())
        .unwrap();
    let other = WireKey::parse(&"0".repeat(32)).unwrap();
    assert_eq!(other.open(&sealed, &aad()), Err(CryptoError::Decrypt));
}

#[test]
fn infisical_envelopes_have_a_sixteen_byte_iv_no_aad_and_a_fresh_iv_each_time() {
    let key = WireKey::parse("0123456789abcdef0123456789abcdef").unwrap();
    let mut rng = rng();
    let one = key.seal_for_infisical(b"DB_URL", &mut rng).unwrap();
    let two = key.seal_for_infisical(b"DB_URL", &mut rng).unwrap();
    assert_eq!((one.iv.len(), one.tag.len()), (16, 16));
    assert_ne!(one.iv, two.iv);
    assert_eq!(key.open(&one, b"").unwrap(), b"DB_URL");
    assert_eq!(key.open(&one, b"x"), Err(CryptoError::Decrypt), "no AAD");
    let empty = key.seal_for_infisical(b"", &mut rng).unwrap();
    assert!(empty.ciphertext.is_empty());
    assert_eq!(key.open(&empty, b"").unwrap(), b"");
}

#[test]
fn sixteen_byte_ivs_from_infisical_clients_decrypt() {
    let key = WireKey::parse("0123456789abcdef0123456789abcdef").unwrap();
    let iv = [9u8; 16];
    let mut buf = b"hello".to_vec();
    let tag = Aes256Gcm16::new((&key.aes_key()).into())
        .encrypt_in_place_detached(
            aes_gcm::aead::generic_array::GenericArray::from_slice(&iv),
            b"",
            &mut buf,
        )
        .unwrap();
    let sealed = Sealed {
        ciphertext: buf,
        iv: iv.to_vec(),
        tag: tag.to_vec(),
    };
    assert_eq!(key.open(&sealed, b"").unwrap(), b"hello");
}

#[test]
fn malformed_envelopes_are_refused() {
    let key = WireKey::generate(&mut rng());
    let mut sealed = key.seal(b"v", b"", &mut rng()).unwrap();
    sealed.iv.truncate(8);
    assert_eq!(key.open(&sealed, b""), Err(CryptoError::Envelope));
    let mut sealed = key.seal(b"v", b"", &mut rng()).unwrap();
    sealed.tag.pop();
    assert_eq!(key.open(&sealed, b""), Err(CryptoError::Envelope));
}

#[test]
fn wire_keys_are_32_lowercase_hex_and_the_aes_key_is_their_ascii() {
    let key = WireKey::generate(&mut rng());
    assert!(is_lower_hex(key.expose(), 32));
    assert_eq!(&key.aes_key(), key.expose().as_bytes());
    assert!(WireKey::parse("ABCDEF0123456789abcdef0123456789").is_err());
    assert!(WireKey::parse("abc").is_err());
    assert_eq!(format!("{key:?}"), "WireKey(<redacted>)");
}

#[test]
fn project_keys_wrapped_by_the_root_key_are_bound_to_their_project() {
    let root = RootKey::generate(&mut rng());
    let project_key = WireKey::generate(&mut rng());
    let wrapped = root.wrap("p1", &project_key, &mut rng()).unwrap();
    assert_eq!(root.unwrap_key("p1", &wrapped).unwrap(), project_key);
    assert!(root.unwrap_key("p2", &wrapped).is_err());
    let again = RootKey::from_hex(&root.to_hex()).unwrap();
    assert_eq!(again.unwrap_key("p1", &wrapped).unwrap(), project_key);
    assert!(RootKey::from_hex("00").is_err());
}

#[test]
fn fresh_nonces_make_equal_plaintexts_differ() {
    let key = WireKey::generate(&mut rng());
    let mut r = rng();
    let a = key.seal(b"same", b"", &mut r).unwrap();
    let b = key.seal(b"same", b"", &mut r).unwrap();
    assert_ne!(a.iv, b.iv);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn constant_time_eq_compares_content_and_length() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}

#[test]
fn rotation_is_recommended_from_ninety_percent_of_two_to_the_32() {
    assert_eq!(ENCRYPTION_WARNING_THRESHOLD, ENCRYPTION_LIMIT * 9 / 10);
    assert!(!key_rotation_recommended(ENCRYPTION_WARNING_THRESHOLD - 1));
    assert!(key_rotation_recommended(ENCRYPTION_WARNING_THRESHOLD));
}
