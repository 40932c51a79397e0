//! Unit tests of `token`.

use super::*;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

const ID: &str = "0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b";
const SECRET: &str = "00112233445566778899aabbccddeeff";
const KEY: &str = "ffeeddccbbaa99887766554433221100";

#[test]
fn generated_service_token_round_trips_through_the_holders_parse() {
    let token = ServiceTokenSecret::generate(&mut rng());
    let text = token.expose();
    assert!(text.starts_with("st."));
    assert_eq!(ServiceTokenSecret::parse(&text).unwrap(), token);
}

#[test]
fn key_is_the_part_after_the_last_dot_and_the_access_token_the_rest() {
    let text = format!("st.{ID}.{SECRET}.{KEY}");
    let token = ServiceTokenSecret::parse(&text).unwrap();
    assert_eq!(token.key().expose(), KEY);
    assert_eq!(token.secret(), SECRET);
    assert_eq!(token.id().to_string(), ID);
    assert_eq!(token.access_token(), format!("st.{ID}.{SECRET}"));
}

#[test]
fn three_and_four_part_service_tokens_parse_to_the_same_access_token() {
    let three = AnyToken::parse(&format!("st.{ID}.{SECRET}")).unwrap();
    let four = AnyToken::parse(&format!("st.{ID}.{SECRET}.{KEY}")).unwrap();
    assert_eq!(three, four);
    let AnyToken::Service(access) = three else {
        panic!("not a service token");
    };
    assert_eq!(access.id().to_string(), ID);
    assert_eq!(access.secret(), SECRET);
}

#[test]
fn access_token_part_cuts_only_a_key_shaped_fourth_part() {
    let access = format!("st.{ID}.{SECRET}");
    assert_eq!(access_token_part(&format!("{access}.{KEY}")), access);
    assert_eq!(access_token_part(&access), access);
    for unchanged in [
        format!("{access}.{}", KEY.to_uppercase()),
        format!("{access}.{KEY}.{KEY}"),
        format!("ia.{ID}.{SECRET}.{KEY}"),
        "st.x".to_owned(),
        String::new(),
    ] {
        assert_eq!(access_token_part(&unchanged), unchanged);
    }
}

#[test]
fn parsed_access_token_holds_nothing_of_the_key_part() {
    let token = ServiceTokenSecret::generate(&mut rng());
    let AnyToken::Service(access) = AnyToken::parse(&token.expose()).unwrap() else {
        panic!("not a service token");
    };
    // The type has no key field; its only text is the secret.
    assert!(!access.secret().contains(token.key().expose()));
    assert!(!format!("{access:?}").contains(token.key().expose()));
}

#[test]
fn holders_parse_refuses_a_token_without_its_key_part() {
    for raw in [
        format!("st.{ID}.{SECRET}"),
        format!("st.{ID}.{SECRET}.{}", KEY.to_uppercase()),
        format!("ia.{ID}.{SECRET}{SECRET}"),
    ] {
        let err = ServiceTokenSecret::parse(&raw).unwrap_err();
        assert_eq!(err.reason, Reason::TokenMalformed, "{raw:?}");
    }
    let err = ServiceTokenSecret::parse(&format!("st.{ID}.{SECRET}")).unwrap_err();
    assert!(err.message.contains("st.<id>.<secret>.<key>"));
}

#[test]
fn generated_identity_token_round_trips_and_is_never_a_service_token() {
    let token = IdentityTokenSecret::generate(&mut rng());
    let parsed = AnyToken::parse(&token.expose()).unwrap();
    assert!(matches!(parsed, AnyToken::Identity(_)));
    assert_eq!(parsed.id(), token.id());
}

#[test]
fn malformed_tokens_are_token_malformed() {
    let good = ServiceTokenSecret::generate(&mut rng()).expose();
    let (id, hex32) = (ID, SECRET);
    let bad = [
        String::new(),
        "Bearer x".to_owned(),
        good.replacen("st.", "sx.", 1),
        good[..good.len() - 1].to_owned(),
        format!("{good}0"),
        format!("st.{id}"),
        format!("st.{id}.{}", &hex32[1..]),
        format!("st.{id}.{hex32}."),
        format!("st.{id}.{hex32}.{}", hex32.to_uppercase()),
        format!("st.{}.{hex32}.{hex32}", id.to_uppercase()),
        format!("st.{}.{hex32}.{hex32}", id.replace('-', "")),
        format!("st.{}.{hex32}", id.to_uppercase()),
        format!("st.{id}.{hex32}.{hex32}.{hex32}"),
        format!("ia.{id}.{hex32}"),
        format!("ia.{id}"),
    ];
    for raw in bad {
        let err = AnyToken::parse(&raw).unwrap_err();
        assert_eq!(err.reason, Reason::TokenMalformed, "{raw:?}");
    }
}

#[test]
fn debug_output_never_contains_the_secret_or_key() {
    let token = ServiceTokenSecret::generate(&mut rng());
    let debug = format!("{token:?}");
    assert!(!debug.contains(token.secret()));
    assert!(!debug.contains(token.key().expose()));
    let identity = IdentityTokenSecret::generate(&mut rng());
    assert!(!format!("{identity:?}").contains(identity.secret()));
}

#[test]
fn secret_hash_verifies_only_the_right_secret() {
    let hash = hash_secret("right", &mut rng()).unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(verify_secret("right", &hash));
    assert!(!verify_secret("wrong", &hash));
    assert!(!verify_secret("right", "not a hash"));
}

#[test]
fn verification_in_reused_memory_agrees_with_a_fresh_one() {
    let hash = hash_secret("right", &mut rng()).unwrap();
    let mut memory = Argon2Memory::default();
    for _ in 0..2 {
        assert!(verify_secret_with("right", &hash, &mut memory));
        assert!(!verify_secret_with("wrong", &hash, &mut memory));
    }
    assert!(format!("{memory:?}").contains("blocks"));
}

#[test]
fn a_hash_asking_for_unbounded_memory_verifies_nothing() {
    let salt = SaltString::generate(&mut rng());
    let greedy = argon2::Params::new(MAX_ARGON2_MEMORY_KIB + 8, 1, 1, None).unwrap();
    let hash = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, greedy)
        .hash_password(b"right", &salt)
        .unwrap()
        .to_string();
    assert!(!verify_secret("right", &hash));
}

#[test]
fn secret_hash_debug_prints_nothing_of_the_hash() {
    let hash = hash_secret("right", &mut rng()).unwrap();
    let debug = format!("{:?}", SecretHash::new(hash.clone()));
    assert!(!debug.contains(&hash[10..]), "{debug}");
}

#[test]
fn fingerprints_differ_per_token() {
    assert_ne!(fingerprint("a"), fingerprint("b"));
    assert_eq!(fingerprint("a"), fingerprint("a"));
}
