//! Token parsing: never panics; whatever parses has its canonical shape,
//! and a service token parses to the same access token with or without a
//! key part, which the access token never contains; a JWT parses only
//! within its length limit.
#![no_main]

use latchkey_domain::token::{AnyToken, ServiceTokenSecret, access_token_part};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let access = access_token_part(text);
    assert!(text.starts_with(access), "the access part is a prefix");
    if let Ok(token) = AnyToken::parse(text) {
        assert_eq!(AnyToken::parse(access).ok(), Some(token.clone()));
        match &token {
            AnyToken::Service(st) => {
                let canonical = format!("st.{}.{}", st.id(), st.secret());
                assert_eq!(access, canonical);
                assert_eq!(st.secret().len(), 32);
            }
            AnyToken::Identity(it) => {
                assert_eq!(text, format!("ia.{}.{}", it.id(), it.secret()));
            }
            AnyToken::Jwt(jwt) => {
                // Parsed, never verified here: three parts, within the limit.
                assert_eq!(text.split('.').count(), 3);
                assert!(text.len() <= latchkey_domain::token::jwt::MAX_JWT_LEN);
                assert_eq!(jwt.id(), jwt.claims().identity_access_token_id);
            }
        }
    }
    if let Ok(full) = ServiceTokenSecret::parse(text) {
        assert_eq!(full.expose(), text, "a whole token round-trips");
        assert_eq!(full.access_token(), access);
        assert!(!access.contains(full.key().expose()));
    }
});
