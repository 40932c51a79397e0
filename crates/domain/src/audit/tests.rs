//! Unit tests of `audit`.

use chrono::{DateTime, Duration, Utc};

use super::chain::{Break, ChainVerifier, ChainWriter, Chained, Start, link_mac};
use super::tally::{
    MAX_KEYS, OVERFLOW_REASONS, Tally, UNVERIFIED_REASONS, client_prefix, unverified_reason,
};
use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn key() -> AuditKey {
    AuditKey::derive(&RootKey::from_hex(&"ab".repeat(32)).unwrap())
}

fn event(n: u64) -> AuditEvent {
    let mut e = AuditEvent::new(
        "secret.read",
        t0() + Duration::seconds(n as i64),
        Transport::Grpc,
    );
    e.principal = format!("identity:{n}");
    e.secrets = vec![SecretRef {
        name: "DB_PASSWORD".into(),
        version: Some(n),
    }];
    e
}

fn chain(n: u64) -> Vec<Chained> {
    let mut writer = ChainWriter::new("r1", Start::GENESIS);
    (1..=n).map(|i| writer.append(&key(), event(i))).collect()
}

fn verify(rows: Vec<Chained>) -> Result<u64, Break> {
    let key = key();
    let mut verifier = ChainVerifier::new(&key, "r1", Start::GENESIS);
    for row in rows {
        verifier.push(row)?;
    }
    verifier.finish()
}

#[test]
fn an_untouched_chain_verifies_every_event() {
    assert_eq!(verify(chain(5)), Ok(5));
    assert_eq!(verify(Vec::new()), Ok(0));
}

#[test]
fn a_changed_field_is_named_at_its_event() {
    let mutations: [fn(&mut AuditEvent); 6] = [
        |e| e.principal = "identity:someone-else".into(),
        |e| e.outcome = Outcome::Denied,
        |e| e.secrets[0].version = Some(99),
        |e| e.client_ip = "192.0.2.1".into(),
        |e| e.time += Duration::microseconds(1),
        |e| e.count = 2,
    ];
    for mutate in mutations {
        let mut rows = chain(5);
        mutate(&mut rows[2].event);
        assert_eq!(
            verify(rows),
            Err(Break::Changed {
                replica: "r1".into(),
                sequence: 3
            })
        );
    }
}

#[test]
fn a_removed_event_is_named_by_its_sequence() {
    let mut rows = chain(5);
    rows.remove(1);
    assert_eq!(
        verify(rows),
        Err(Break::Removed {
            replica: "r1".into(),
            sequence: 2
        })
    );
}

#[test]
fn two_events_that_swapped_places_are_named_as_reordered() {
    let mut rows = chain(5);
    // Swapped sequence numbers: read back in sequence order, 3 holds 4's event.
    let (a, b) = (rows[2].clone(), rows[3].clone());
    rows[2] = Chained { sequence: 3, ..b };
    rows[3] = Chained { sequence: 4, ..a };
    assert_eq!(
        verify(rows),
        Err(Break::Reordered {
            replica: "r1".into(),
            sequence: 3
        })
    );
}

#[test]
fn a_rewritten_chain_does_not_verify_without_the_key() {
    let mut rows = chain(3);
    let other = AuditKey::derive(&RootKey::from_hex(&"cd".repeat(32)).unwrap());
    rows[1].event.principal = "identity:forged".into();
    rows[1].mac = link_mac(&other, "r1", 2, &rows[0].mac, &rows[1].event);
    assert!(matches!(
        verify(rows),
        Err(Break::Changed { sequence: 2, .. })
    ));
}

#[test]
fn a_chain_continues_from_a_checkpoint() {
    let rows = chain(6);
    let start = Start {
        sequence: 4,
        prev_mac: rows[2].mac,
    };
    let key = key();
    let mut verifier = ChainVerifier::new(&key, "r1", start);
    for row in rows.into_iter().skip(3) {
        verifier.push(row).unwrap();
    }
    assert_eq!(verifier.finish(), Ok(3));
}

#[test]
fn a_rewound_writer_continues_after_the_last_stored_link() {
    let mut writer = ChainWriter::new("r1", Start::GENESIS);
    let stored = writer.append(&key(), event(1));
    let saved = writer.next();
    let _lost = writer.append(&key(), event(2));
    writer.rewind(saved);
    let again = writer.append(&key(), event(3));
    assert_eq!(again.sequence, 2);
    assert_eq!(verify(vec![stored, again]), Ok(2));
}

#[test]
fn the_audit_key_is_derived_from_the_root_key_and_hides_in_debug() {
    let root = RootKey::from_hex(&"ab".repeat(32)).unwrap();
    assert_eq!(AuditKey::derive(&root), key());
    assert_ne!(key().expose(), &root.derive("another purpose"));
    assert_eq!(format!("{:?}", key()), "AuditKey(<redacted>)");
}

#[test]
fn a_service_token_hashes_alike_with_or_without_its_key_part() {
    let access = "st.0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b.00112233445566778899aabbccddeeff";
    let whole = format!("{access}.ffeeddccbbaa99887766554433221100");
    let h = key().token_hmac(access);
    assert_eq!(h, key().token_hmac(&whole));
    assert_eq!(h.len(), 64);
    assert!(!h.contains("00112233"), "no part of the token shows");
    assert_ne!(h, key().token_hmac("ia.other"));
}

#[test]
fn user_agents_are_cut_to_the_limit() {
    let e = AuditEvent::new("x", t0(), Transport::Http).with_user_agent(&"é".repeat(1000));
    assert_eq!(e.user_agent.chars().count(), MAX_USER_AGENT);
}

#[test]
fn outcomes_and_transports_round_trip_their_names() {
    for o in [Outcome::Allowed, Outcome::Denied, Outcome::Failed] {
        assert_eq!(Outcome::parse(o.as_str()), Some(o));
    }
    for t in [Transport::Grpc, Transport::Http, Transport::Internal] {
        assert_eq!(Transport::parse(t.as_str()), Some(t));
    }
    assert_eq!(Outcome::parse("ok"), None);
}

#[test]
fn client_prefixes_are_ipv4_24_and_ipv6_64() {
    assert_eq!(
        client_prefix("192.0.2.77".parse().unwrap()).to_string(),
        "192.0.2.0/24"
    );
    assert_eq!(
        client_prefix("2001:db8:1:2:3:4:5:6".parse().unwrap()).to_string(),
        "2001:db8:1:2::/64"
    );
    assert_eq!(
        client_prefix("::ffff:10.1.2.3".parse().unwrap()).to_string(),
        "10.1.2.0/24"
    );
}

#[test]
fn refusals_aggregate_per_prefix_and_reason_per_interval() {
    let mut tally = Tally::new(Duration::seconds(10), t0());
    for i in 0..50 {
        let ip = format!("192.0.2.{i}").parse().ok();
        tally.count(ip, "TOKEN_MALFORMED", "m", Transport::Grpc);
    }
    tally.count(
        "2001:db8::1".parse().ok(),
        "TOKEN_MALFORMED",
        "m",
        Transport::Http,
    );
    tally.count(
        "2001:db8::2".parse().ok(),
        "TOO_MANY_FAILED_ATTEMPTS",
        "m",
        Transport::Http,
    );
    assert!(
        tally.close(t0() + Duration::seconds(9)).is_empty(),
        "not due yet"
    );

    let events = tally.close(t0() + Duration::seconds(10));
    let summary: Vec<(&str, &str, u64)> = events
        .iter()
        .map(|e| (e.client_ip.as_str(), e.reason.as_str(), e.count))
        .collect();
    assert_eq!(
        summary,
        [
            ("192.0.2.0/24", "TOKEN_MALFORMED", 50),
            ("2001:db8::/64", "TOKEN_MALFORMED", 1),
            ("2001:db8::/64", "TOO_MANY_FAILED_ATTEMPTS", 1),
        ]
    );
    assert!(events.iter().all(|e| e.outcome == Outcome::Denied));
    assert!(
        tally.close(t0() + Duration::seconds(30)).is_empty(),
        "counts start again"
    );
}

#[test]
fn a_flood_from_every_prefix_yields_at_most_the_bound_per_interval() {
    let mut tally = Tally::new(Duration::seconds(10), t0());
    for i in 0..100_000u32 {
        let ip = std::net::Ipv6Addr::from(u128::from(i) << 64);
        for reason in UNVERIFIED_REASONS {
            tally.count(Some(ip.into()), reason, "m", Transport::Grpc);
        }
    }
    let events = tally.close(t0() + Duration::seconds(10));
    assert!(
        events.len() <= MAX_KEYS + OVERFLOW_REASONS,
        "{}",
        events.len()
    );
    let total: u64 = events.iter().map(|e| e.count).sum();
    assert_eq!(
        total,
        100_000 * UNVERIFIED_REASONS.len() as u64,
        "every refusal is counted somewhere"
    );
    assert!(events.iter().any(|e| e.client_ip == "*"));
}

#[test]
fn only_refusals_without_a_principal_are_counted_rather_than_recorded() {
    assert_eq!(
        unverified_reason("TOKEN_MALFORMED"),
        Some("TOKEN_MALFORMED")
    );
    assert_eq!(unverified_reason("TOKEN_INVALID"), Some("TOKEN_INVALID"));
    for alone in [
        "SCOPE_DENIED",
        "TOKEN_EXPIRED",
        "TOKEN_REVOKED",
        "IP_NOT_TRUSTED",
        "NOT_FOUND",
    ] {
        assert_eq!(unverified_reason(alone), None, "{alone}");
    }
}

#[test]
fn refusals_not_of_the_callers_doing_are_failures_and_the_rest_denials() {
    assert_eq!(Outcome::of_refusal("NOT_FOUND"), Outcome::Failed);
    assert_eq!(Outcome::of_refusal("STORE_UNAVAILABLE"), Outcome::Failed);
    assert_eq!(Outcome::of_refusal("SCOPE_DENIED"), Outcome::Denied);
    assert_eq!(Outcome::of_refusal("INVALID_ARGUMENT"), Outcome::Denied);
}

fn event_at(project: &str, env: &str, path: &str) -> AuditEvent {
    let mut e = AuditEvent::new("secret.read", t0(), Transport::Grpc);
    e.project_id = project.to_owned();
    e.environment = env.to_owned();
    e.path = path.to_owned();
    e
}

#[test]
fn a_project_admin_reaches_its_projects_and_a_scoped_one_only_inside_its_scopes() {
    use super::reach::{AuditReach, ProjectReach};
    use crate::scope::{Scope, Scopes};
    let reach = AuditReach::Projects(vec![
        ProjectReach {
            project_id: "p1".into(),
            scopes: None,
        },
        ProjectReach {
            project_id: "p2".into(),
            scopes: Some(Scopes::new(vec![Scope::new("dev", "/app/**").unwrap()])),
        },
    ]);
    assert!(reach.allows(&event_at("p1", "prod", "/x")));
    assert!(
        reach.allows(&event_at("p1", "", "")),
        "project-wide events of an unscoped admin"
    );
    assert!(reach.allows(&event_at("p2", "dev", "/app/db")));
    assert!(!reach.allows(&event_at("p2", "prod", "/app/db")));
    assert!(
        !reach.allows(&event_at("p2", "", "")),
        "project-wide events need an unscoped admin"
    );
    assert!(!reach.allows(&event_at("p3", "dev", "/app")));
    assert!(
        !reach.allows(&event_at("", "", "")),
        "aggregates and the service's own acts"
    );
    assert_eq!(
        reach.project_ids(),
        Some(vec!["p1".to_owned(), "p2".to_owned()])
    );
    assert!(AuditReach::All.allows(&event_at("", "", "")));
}

#[test]
fn a_checkpoint_resumes_its_chain_and_one_moved_or_forged_does_not_verify() {
    use super::chain::Checkpoint;
    let key = AuditKey::from_bytes([9; 32]);
    let mut writer = ChainWriter::new("r", Start::GENESIS);
    let links: Vec<_> = (0..5)
        .map(|i| {
            let mut e = AuditEvent::new("secret.read", t0(), Transport::Grpc);
            e.target = i.to_string();
            writer.append(&key, e)
        })
        .collect();
    // Retention reaped the first two.
    let checkpoint = Checkpoint::new(&key, "r", 2, links[1].mac);
    let start = checkpoint.start(&key).expect("sealed");
    let mut verifier = ChainVerifier::new(&key, "r", start);
    for link in links[2..].iter().cloned() {
        verifier.push(link).unwrap();
    }
    assert_eq!(verifier.finish().unwrap(), 3);

    // Moved past a removed event, with that event's real MAC: the seal fails.
    let moved = Checkpoint {
        sequence: 3,
        mac: links[2].mac,
        ..checkpoint.clone()
    };
    assert_eq!(moved.start(&key), None);
    assert_eq!(
        checkpoint.start(&AuditKey::from_bytes([8; 32])),
        None,
        "another key"
    );
}
