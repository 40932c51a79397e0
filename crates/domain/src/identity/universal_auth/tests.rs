use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn secret(ttl_seconds: i64, num_uses_limit: u64, use_count: u64) -> ClientSecret {
    ClientSecret {
        id: "cs".into(),
        identity_id: IdentityId::from_stored("i".into()),
        description: String::new(),
        prefix: "abcd".into(),
        secret_hash: "$argon2id$hash".into(),
        ttl_seconds,
        num_uses_limit,
        use_count,
        last_used_at: None,
        revoked_at: None,
        created_at: t0(),
    }
}

fn reason(result: Result<(), AccessError>) -> Reason {
    result.unwrap_err().reason
}

#[test]
fn client_secret_without_ttl_or_limit_is_always_usable() {
    let s = secret(0, 0, 1_000_000);
    assert_eq!(s.expires_at(), None);
    s.check_usable(t0() + Duration::days(36_500)).unwrap();
}

#[test]
fn client_secret_past_its_ttl_is_expired_and_says_so() {
    let s = secret(60, 0, 0);
    s.check_usable(t0() + Duration::seconds(59)).unwrap();
    let e = s.check_usable(t0() + Duration::seconds(60)).unwrap_err();
    assert_eq!(e.reason, Reason::TokenExpired);
    assert!(e.message.contains("client secret expired"), "{}", e.message);
}

#[test]
fn client_secret_with_a_limit_of_n_allows_n_logins() {
    secret(0, 3, 2).check_usable(t0()).unwrap();
    let e = secret(0, 3, 3).check_usable(t0()).unwrap_err();
    assert_eq!(e.reason, Reason::TokenUsesExhausted);
    assert!(e.message.contains("limit of 3 logins"), "{}", e.message);
}

#[test]
fn revoked_client_secret_is_refused_before_anything_else() {
    let mut s = secret(60, 1, 1);
    s.revoked_at = Some(t0());
    assert_eq!(
        reason(s.check_usable(t0() + Duration::days(1))),
        Reason::TokenRevoked
    );
}

#[test]
fn terms_are_validated_naming_the_field() {
    let ok = ClientSecretTerms::parse("  ci runner ", 3600, 5).unwrap();
    assert_eq!(
        (ok.description.as_str(), ok.ttl_seconds, ok.num_uses_limit),
        ("ci runner", 3600, 5)
    );
    for (description, ttl, limit, field) in [
        ("x".repeat(257), 0, 0, "description"),
        ("a\nb".to_owned(), 0, 0, "description"),
        (String::new(), -1, 0, "ttl"),
        (String::new(), 315_360_001, 0, "ttl"),
        (String::new(), 0, -1, "num_uses_limit"),
    ] {
        let e = ClientSecretTerms::parse(&description, ttl, limit).unwrap_err();
        assert_eq!(e.field, field, "{description:?} {ttl} {limit}");
    }
    ClientSecretTerms::parse(&"x".repeat(256), 315_360_000, 0).unwrap();
}

#[test]
fn generated_secret_is_64_hex_and_parses_back_trimmed() {
    let mut rng = rand::rngs::OsRng;
    let s = ClientSecretValue::generate(&mut rng);
    assert_eq!(s.expose().len(), 64);
    assert_eq!(
        ClientSecretValue::parse(&format!(" {}\n", s.expose())).unwrap(),
        s
    );
    assert_eq!(s.prefix(), &s.expose()[..4]);
    assert_ne!(s, ClientSecretValue::generate(&mut rng));
}

#[test]
fn anything_but_64_lowercase_hex_is_not_a_client_secret() {
    let good = "a".repeat(64);
    for bad in [
        "a".repeat(63),
        "a".repeat(65),
        "A".repeat(64),
        "g".repeat(64),
        String::new(),
    ] {
        assert_eq!(
            ClientSecretValue::parse(&bad).unwrap_err().field,
            "client_secret"
        );
    }
    ClientSecretValue::parse(&good).unwrap();
}

#[test]
fn secret_debug_shows_only_its_prefix() {
    let s = ClientSecretValue::generate(&mut rand::rngs::OsRng);
    let debug = format!("{s:?}");
    assert!(debug.contains(s.prefix()), "{debug}");
    assert!(!debug.contains(s.expose()), "{debug}");
}

#[test]
fn client_id_is_a_canonical_uuid() {
    let id = "0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b";
    assert_eq!(parse_client_id(&format!(" {id} ")).unwrap(), id);
    for bad in [&id.to_uppercase(), "not-a-uuid", "", &id.replace('-', "")] {
        assert_eq!(
            parse_client_id(bad).unwrap_err().field,
            "client_id",
            "{bad}"
        );
    }
}

#[test]
fn empty_trusted_ip_list_keeps_the_current_one() {
    let config = UniversalAuthConfig {
        identity_id: IdentityId::from_stored("i".into()),
        client_id: "c".into(),
        client_secret_trusted_ips: default_client_secret_trusted_ips(),
        access: TokenAuthConfig::defaults(),
        created_at: t0(),
    };
    assert_eq!(
        config.with_client_secret_trusted_ips(&[]).unwrap(),
        config.client_secret_trusted_ips
    );
    let narrowed = config
        .with_client_secret_trusted_ips(&["10.0.0.0/8".to_owned()])
        .unwrap();
    assert_eq!(narrowed.to_strings(), ["10.0.0.0/8"]);
    assert_eq!(
        config
            .with_client_secret_trusted_ips(&["nope".to_owned()])
            .unwrap_err()
            .field,
        "client_secret_trusted_ips[0]"
    );
}
