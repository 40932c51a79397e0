use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;
use crate::token::AnyToken;

const NOW: i64 = 1_800_000_000;
const ID: &str = "0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b";

fn root(byte: u8) -> RootKey {
    RootKey::from_hex(&hex::encode([byte; 32])).unwrap()
}

fn claims(exp: Option<i64>) -> AccessClaims {
    AccessClaims::new(
        "identity-1",
        Uuid::parse_str(ID).unwrap(),
        AuthMethod::UniversalAuth,
        NOW,
        exp,
    )
}

fn parse(raw: &str) -> Result<AccessJwt, AccessError> {
    match AnyToken::parse(raw)? {
        AnyToken::Jwt(jwt) => Ok(*jwt),
        other => panic!("not parsed as a JWT: {other:?}"),
    }
}

fn reason(result: Result<impl std::fmt::Debug, AccessError>) -> Reason {
    result.unwrap_err().reason
}

#[test]
fn signed_token_verifies_and_its_payload_is_readable_as_infisicals() {
    let keys = AccessTokenKeys::derive(&root(1), None);
    let token = keys.sign(&claims(Some(NOW + 60))).unwrap();
    let jwt = parse(&token).unwrap();
    assert_eq!(jwt.id().to_string(), ID);
    keys.verify(&jwt, NOW).unwrap();
    // What a client reads without any key: Infisical's claim names.
    let payload = token.split('.').nth(1).unwrap();
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(payload["identityId"], "identity-1");
    assert_eq!(payload["identityAccessTokenId"], ID);
    assert_eq!(payload["jti"], ID);
    assert_eq!(payload["authTokenType"], "identityAccessToken");
    assert_eq!(payload["authMethod"], "universal-auth");
    assert_eq!(payload["iat"], NOW);
    assert_eq!(payload["exp"], NOW + 60);
    assert_eq!(payload["iss"], "latchkey");
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], keys.kid());
}

#[test]
fn token_with_any_character_changed_is_refused() {
    let keys = AccessTokenKeys::derive(&root(1), None);
    let token = keys.sign(&claims(Some(NOW + 60))).unwrap();
    for i in 0..token.len() {
        if token.as_bytes()[i] == b'.' {
            continue;
        }
        let mut changed = token.clone().into_bytes();
        changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).unwrap();
        let verdict = parse(&changed).and_then(|jwt| keys.verify(&jwt, NOW));
        assert!(verdict.is_err(), "changed at {i}: {changed}");
    }
}

#[test]
fn token_signed_under_another_root_key_is_invalid() {
    let ours = AccessTokenKeys::derive(&root(1), None);
    let theirs = AccessTokenKeys::derive(&root(2), None);
    let token = theirs.sign(&claims(None)).unwrap();
    assert_eq!(
        reason(ours.verify(&parse(&token).unwrap(), NOW)),
        Reason::TokenInvalid
    );
}

#[test]
fn token_naming_our_kid_but_signed_with_another_key_is_invalid() {
    let ours = AccessTokenKeys::derive(&root(1), None);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(ours.kid().to_owned());
    let forged =
        jsonwebtoken::encode(&header, &claims(None), &EncodingKey::from_secret(b"guess")).unwrap();
    assert_eq!(
        reason(ours.verify(&parse(&forged).unwrap(), NOW)),
        Reason::TokenInvalid
    );
}

#[test]
fn secondary_root_key_verifies_tokens_signed_before_a_rotation() {
    let (old, new) = (root(1), root(2));
    let before = AccessTokenKeys::derive(&old, None)
        .sign(&claims(None))
        .unwrap();
    let rotating = AccessTokenKeys::derive(&new, Some(&old));
    rotating.verify(&parse(&before).unwrap(), NOW).unwrap();
    // New tokens are signed under the new primary.
    let after = rotating.sign(&claims(None)).unwrap();
    let done = AccessTokenKeys::derive(&new, None);
    done.verify(&parse(&after).unwrap(), NOW).unwrap();
    assert_eq!(
        reason(done.verify(&parse(&before).unwrap(), NOW)),
        Reason::TokenInvalid
    );
}

#[test]
fn token_past_its_exp_is_expired_and_one_without_exp_never_is() {
    let keys = AccessTokenKeys::derive(&root(1), None);
    let short = parse(&keys.sign(&claims(Some(NOW + 60))).unwrap()).unwrap();
    keys.verify(&short, NOW + 59).unwrap();
    assert_eq!(reason(keys.verify(&short, NOW + 60)), Reason::TokenExpired);
    let forever = parse(&keys.sign(&claims(None)).unwrap()).unwrap();
    keys.verify(&forever, NOW + 100 * 365 * 86_400).unwrap();
}

#[test]
fn unsigned_and_other_algorithm_tokens_are_malformed() {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(None)).unwrap());
    for header in [
        r#"{"alg":"none","typ":"JWT","kid":"x"}"#,
        r#"{"alg":"HS384","typ":"JWT","kid":"x"}"#,
        r#"{"alg":"RS256","typ":"JWT","kid":"x"}"#,
        r#"{"alg":"HS256","typ":"JWT"}"#,
    ] {
        let token = format!("{}.{payload}.c2ln", URL_SAFE_NO_PAD.encode(header));
        assert_eq!(reason(parse(&token)), Reason::TokenMalformed, "{header}");
    }
}

#[test]
fn jwt_that_is_not_an_identity_access_token_is_malformed() {
    let keys = AccessTokenKeys::derive(&root(1), None);
    let mut other = claims(None);
    other.auth_token_type = "user".to_owned();
    let token = keys.sign(&other).unwrap();
    assert_eq!(reason(parse(&token)), Reason::TokenMalformed);
    let over = format!("{}.{}.sig", "a".repeat(MAX_JWT_LEN), "b");
    assert_eq!(reason(parse(&over)), Reason::TokenMalformed);
}

#[test]
fn only_three_base64url_parts_are_taken_for_a_jwt() {
    for raw in ["a.b", "a..c", "a.b.c.d", "a.b.c=", "a.b/c.d", ".b.c", ""] {
        assert!(AccessJwt::parse(raw).is_none(), "{raw}");
    }
    assert!(AccessJwt::parse("a.b.c").is_some());
}

#[test]
fn debug_shows_the_id_and_kid_never_the_token() {
    let keys = AccessTokenKeys::derive(&root(1), None);
    let token = keys.sign(&claims(None)).unwrap();
    let debug = format!("{:?}", parse(&token).unwrap());
    assert!(debug.contains(ID), "{debug}");
    assert!(
        !debug.contains(token.rsplit('.').next().unwrap()),
        "{debug}"
    );
    assert!(!format!("{keys:?}").contains(&hex::encode(root(1).derive(SIGNING_LABEL))));
}
