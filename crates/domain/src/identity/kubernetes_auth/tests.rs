use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const RSA_PRIVATE: &str = include_str!("testdata/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("testdata/rsa-public.pem");
const EC_PRIVATE: &str = include_str!("testdata/ec-private.pem");
const OTHER_RSA_PRIVATE: &str = include_str!("testdata/other-rsa-private.pem");
const OTHER_RSA_PUBLIC: &str = include_str!("testdata/other-rsa-public.pem");

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn config(keys: &str) -> KubernetesAuthConfig {
    KubernetesAuthConfig {
        identity_id: IdentityId::from_stored("i".into()),
        issuer: ISSUER.into(),
        keys: keys.into(),
        allowed_audiences: vec!["latchkey".into()],
        allowed_namespaces: vec!["billing".into()],
        allowed_names: vec!["worker".into()],
        access: TokenAuthConfig::defaults(),
        created_at: chrono::DateTime::from_timestamp(NOW, 0).unwrap(),
    }
}

/// The claims a kube-apiserver puts in a projected token for billing/worker.
fn claims() -> Value {
    json!({
        "aud": ["latchkey"],
        "exp": NOW + 600,
        "iat": NOW,
        "nbf": NOW,
        "iss": ISSUER,
        "sub": "system:serviceaccount:billing:worker",
        "kubernetes.io": {
            "namespace": "billing",
            "pod": {"name": "worker-7d9", "uid": "0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b"},
            "serviceaccount": {"name": "worker", "uid": "5f1c0b7e-2f1c-4d1e-9b8a-1c2d3e4f5a6b"}
        }
    })
}

fn sign(alg: Algorithm, private: &str, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, RSA_PRIVATE, None, claims)
}

/// A JWKS document of the RSA and EC public keys, as a cluster serves it.
fn jwks() -> String {
    let rsa = Jwk::from_encoding_key(
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    let ec = Jwk::from_encoding_key(
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        Algorithm::ES256,
    )
    .unwrap();
    let mut keys = Vec::new();
    for (kid, jwk) in [("rsa-1", rsa), ("ec-1", ec)] {
        let mut jwk = serde_json::to_value(jwk).unwrap();
        jwk["kid"] = kid.into();
        keys.push(jwk);
    }
    json!({ "keys": keys }).to_string()
}

fn verify(keys: &str, token: &str) -> Result<KubernetesSubject, AccessError> {
    let config = config(keys);
    ServiceAccountKeys::parse(&config.keys)
        .unwrap()
        .verify(&config, token, NOW)
}

fn refusal(keys: &str, token: &str) -> (Reason, String) {
    let e = verify(keys, token).unwrap_err();
    assert!(!e.message.contains(token), "never echoes the JWT");
    (e.reason, e.message)
}

#[test]
fn projected_token_signed_rs256_under_a_pem_key_logs_in() {
    let subject = verify(RSA_PUBLIC, &rs256(&claims())).unwrap();
    assert_eq!(
        subject,
        KubernetesSubject {
            namespace: "billing".into(),
            name: "worker".into()
        }
    );
}

#[test]
fn es256_and_rs256_tokens_verify_under_a_jwks_by_kid() {
    let keys = jwks();
    verify(
        &keys,
        &sign(Algorithm::ES256, EC_PRIVATE, Some("ec-1"), &claims()),
    )
    .unwrap();
    verify(
        &keys,
        &sign(Algorithm::RS256, RSA_PRIVATE, Some("rsa-1"), &claims()),
    )
    .unwrap();
    // A kid naming another key of the set does not verify.
    let (reason, message) = refusal(
        &keys,
        &sign(Algorithm::RS256, RSA_PRIVATE, Some("ec-1"), &claims()),
    );
    assert_eq!(reason, Reason::TokenInvalid);
    assert!(message.contains("signature"), "{message}");
}

#[test]
fn each_failed_check_is_named() {
    let mut cases: Vec<(Value, Reason, &str)> = Vec::new();
    let with = |key: &str, value: Value| {
        let mut c = claims();
        c[key] = value;
        c
    };
    cases.push((
        with("aud", json!(["vault"])),
        Reason::TokenInvalid,
        "audience",
    ));
    cases.push((
        with("iss", json!("https://other.example")),
        Reason::TokenInvalid,
        "issuer",
    ));
    cases.push((
        with("exp", json!(NOW - 61)),
        Reason::TokenExpired,
        "expired",
    ));
    cases.push((
        with("nbf", json!(NOW + 61)),
        Reason::TokenInvalid,
        "not valid yet",
    ));
    let mut other_ns = with("sub", json!("system:serviceaccount:other:worker"));
    other_ns["kubernetes.io"]["namespace"] = json!("other");
    cases.push((other_ns, Reason::PermissionDenied, "namespace \"other\""));
    let mut other_sa = with("sub", json!("system:serviceaccount:billing:admin"));
    other_sa["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
    cases.push((
        other_sa,
        Reason::PermissionDenied,
        "service account \"admin\"",
    ));
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    cases.push((no_exp, Reason::TokenInvalid, "no expiry"));
    // `sub` and `kubernetes.io` disagreeing name no service account.
    cases.push((
        with("sub", json!("system:serviceaccount:billing:other")),
        Reason::TokenInvalid,
        "names no service account",
    ));
    for (claims, reason, says) in cases {
        let (got, message) = refusal(RSA_PUBLIC, &rs256(&claims));
        assert_eq!(got, reason, "{message}");
        assert!(message.contains(says), "{says}: {message}");
    }
}

#[test]
fn expiry_and_not_before_allow_a_small_skew() {
    let mut c = claims();
    c["exp"] = json!(NOW - 59);
    c["nbf"] = json!(NOW + 59);
    verify(RSA_PUBLIC, &rs256(&c)).unwrap();
}

#[test]
fn token_signed_by_another_issuers_key_or_changed_is_refused() {
    let (reason, message) = refusal(
        RSA_PUBLIC,
        &sign(Algorithm::RS256, OTHER_RSA_PRIVATE, None, &claims()),
    );
    assert_eq!(reason, Reason::TokenInvalid);
    assert!(message.contains("signature"), "{message}");
    let token = rs256(&claims());
    let (head, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut changed = claims();
    changed["sub"] = json!("system:serviceaccount:billing:worker2");
    let forged = format!(
        "{head}.{}.{signature}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            changed.to_string()
        )
    );
    assert_eq!(refusal(RSA_PUBLIC, &forged).0, Reason::TokenInvalid);
}

#[test]
fn unsigned_and_hmac_tokens_are_refused_even_keyed_with_the_public_key() {
    let payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims().to_string(),
    );
    let none = format!(
        "{}.{payload}.",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"none","typ":"JWT"}"#
        )
    );
    assert_eq!(refusal(RSA_PUBLIC, &none).0, Reason::TokenMalformed);
    // HS256 with the issuer's public key as the HMAC secret: the classic confusion.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    )
    .unwrap();
    let (reason, message) = refusal(RSA_PUBLIC, &hs);
    assert_eq!(reason, Reason::TokenInvalid);
    assert!(message.contains("only RS256 and ES256"), "{message}");
}

#[test]
fn keys_parse_from_pem_or_jwks_and_refuse_anything_else() {
    assert_eq!(ServiceAccountKeys::parse(RSA_PUBLIC).unwrap().keys.len(), 1);
    let both = format!("{RSA_PUBLIC}\n{OTHER_RSA_PUBLIC}");
    assert_eq!(ServiceAccountKeys::parse(&both).unwrap().keys.len(), 2);
    assert_eq!(ServiceAccountKeys::parse(&jwks()).unwrap().keys.len(), 2);
    let symmetric = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}"#;
    for bad in [
        "",
        "{not json",
        symmetric,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        "just text",
    ] {
        assert_eq!(
            ServiceAccountKeys::parse(bad).unwrap_err().field,
            "keys",
            "{bad}"
        );
    }
}

#[test]
fn changes_are_validated_and_lists_are_comma_separated() {
    let base = config(RSA_PUBLIC);
    let changed = base
        .apply(&KubernetesAuthChanges {
            allowed_namespaces: Some(" billing , payments,".into()),
            allowed_audiences: Some(String::new()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(changed.allowed_namespaces, ["billing", "payments"]);
    assert!(changed.allowed_audiences.is_empty(), "\"\" accepts any");
    assert_eq!(changed.allowed_names, base.allowed_names, "unset keeps");
    for (changes, field) in [
        (
            KubernetesAuthChanges {
                issuer: Some(" ".into()),
                ..Default::default()
            },
            "issuer",
        ),
        (
            KubernetesAuthChanges {
                keys: Some("nope".into()),
                ..Default::default()
            },
            "keys",
        ),
        (
            KubernetesAuthChanges {
                allowed_names: Some(vec!["a"; 65].join(",")),
                ..Default::default()
            },
            "allowed_names",
        ),
    ] {
        assert_eq!(base.apply(&changes).unwrap_err().field, field);
    }
}
