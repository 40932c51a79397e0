//! Secret fingerprints: 32 bits of HMAC-SHA-256 of a token secret under a
//! key derived from the root key, kept beside its argon2 hash, so that a
//! wrong secret is refused for the price of one HMAC and never spends the
//! token id's failure budget: knowing a token id gives no power over it.
//!
//! Why a stolen database is no more useful than before: the fingerprint
//! key is not in the database (it is derived from the root key), so a
//! stolen fingerprint cannot be tested offline; and even with the key, 32
//! bits of a 128-bit secret leave 96 unknown, with the argon2 hash still
//! the only way to check a guess.
//!
//! Stored in the hash column as `fp1.<key id>.<tag>` before the PHC string,
//! so rows written before fingerprints (or under a root key since rotated
//! out, told apart by the key id) still verify: they have none, pay argon2
//! as before, and get one after their next successful verification.

use std::fmt;

use subtle::ConstantTimeEq;

use super::SecretHash;
use crate::crypto::{RootKey, hmac_sha256 as mac};

const PREFIX: &str = "fp1.";
/// `fp1.` + 8 hex + `.` + 8 hex.
const ENCODED_LEN: usize = PREFIX.len() + 8 + 1 + 8;

/// The key secrets are fingerprinted with.
#[derive(Clone)]
pub struct FingerprintKey {
    key: [u8; 32],
    id: [u8; 4],
    /// What an unknown token id is compared against, at the same cost.
    decoy: [u8; 4],
}

/// What a fingerprint says of a presented secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precheck {
    /// Not the secret: refuse without argon2.
    Mismatch,
    /// Possibly the secret (one wrong secret in 2^32 gets here): verify.
    Match,
    /// The row has no fingerprint under this key: verify, then store one.
    Absent,
}

impl FingerprintKey {
    /// The fingerprint key of `root`.
    #[must_use]
    pub fn derive(root: &RootKey) -> Self {
        let key = root.derive("latchkey secret fingerprint v1");
        let id_hash = mac(&key, b"key id");
        let decoy_hash = mac(&key, b"decoy");
        let mut id = [0u8; 4];
        id.copy_from_slice(&id_hash[..4]);
        let mut decoy = [0u8; 4];
        decoy.copy_from_slice(&decoy_hash[..4]);
        Self { key, id, decoy }
    }

    /// `phc` with the fingerprint of `secret`, as stored.
    #[must_use]
    pub fn seal(&self, secret: &str, phc: &str) -> SecretHash {
        let phc = SecretHash::new(phc.to_owned());
        SecretHash::new(format!(
            "{PREFIX}{}.{}{}",
            hex::encode(self.id),
            hex::encode(self.tag(secret)),
            phc.phc()
        ))
    }

    /// Checks `secret` against the fingerprint stored in `hash`.
    #[must_use]
    pub fn check(&self, secret: &str, hash: &SecretHash) -> Precheck {
        let tag = self.tag(secret);
        match hash.fingerprint() {
            Some((id, stored)) if id == self.id => {
                if bool::from(tag.ct_eq(&stored)) {
                    Precheck::Match
                } else {
                    Precheck::Mismatch
                }
            }
            _ => Precheck::Absent,
        }
    }

    /// For an unknown token id: the same work as [`Self::check`], always a
    /// mismatch but in a one in 2^32 case, which then verifies against the
    /// decoy hash and fails there.
    #[must_use]
    pub fn check_unknown(&self, secret: &str) -> Precheck {
        if bool::from(self.tag(secret).ct_eq(&self.decoy)) {
            Precheck::Match
        } else {
            Precheck::Mismatch
        }
    }

    fn tag(&self, secret: &str) -> [u8; 4] {
        let full = mac(&self.key, secret.as_bytes());
        let mut tag = [0u8; 4];
        tag.copy_from_slice(&full[..4]);
        tag
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

impl SecretHash {
    /// The argon2 PHC string, without any fingerprint.
    #[must_use]
    pub fn phc(&self) -> &str {
        match self.fingerprint() {
            Some(_) => &self.as_str()[ENCODED_LEN..],
            None => self.as_str(),
        }
    }

    /// The stored fingerprint's key id and tag.
    fn fingerprint(&self) -> Option<([u8; 4], [u8; 4])> {
        let text = self.as_str();
        let encoded = text.get(..ENCODED_LEN)?.strip_prefix(PREFIX)?;
        if !text[ENCODED_LEN..].starts_with('$') {
            return None;
        }
        let (id_hex, tag_hex) = encoded.split_once('.')?;
        let (mut id, mut tag) = ([0u8; 4], [0u8; 4]);
        hex::decode_to_slice(id_hex, &mut id).ok()?;
        hex::decode_to_slice(tag_hex, &mut tag).ok()?;
        Some((id, tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn key(byte: u8) -> FingerprintKey {
        FingerprintKey::derive(&RootKey::from_hex(&hex::encode([byte; 32])).unwrap())
    }

    #[test]
    fn the_right_secret_matches_and_a_wrong_one_does_not() {
        let key = key(1);
        let hash = key.seal("s3cret", PHC);
        assert_eq!(key.check("s3cret", &hash), Precheck::Match);
        assert_eq!(key.check("wrong", &hash), Precheck::Mismatch);
    }

    #[test]
    fn the_phc_string_is_kept_whole_beside_the_fingerprint() {
        let hash = key(1).seal("s3cret", PHC);
        assert!(hash.as_str().starts_with("fp1."));
        assert_eq!(hash.phc(), PHC);
        assert_eq!(SecretHash::new(PHC.to_owned()).phc(), PHC);
        // Sealing again replaces the fingerprint, never nests it.
        assert_eq!(key(2).seal("s3cret", hash.as_str()).phc(), PHC);
    }

    #[test]
    fn a_row_without_a_fingerprint_or_under_another_root_key_is_absent_never_a_mismatch() {
        let old = key(1).seal("s3cret", PHC);
        assert_eq!(key(2).check("s3cret", &old), Precheck::Absent);
        assert_eq!(key(2).check("wrong", &old), Precheck::Absent);
        assert_eq!(
            key(2).check("s3cret", &SecretHash::new(PHC.to_owned())),
            Precheck::Absent
        );
    }

    #[test]
    fn malformed_fingerprints_are_absent() {
        for text in [
            format!("fp1.zzzzzzzz.00000000{PHC}"),
            format!("fp1.00000000.0000000{PHC}"),
            "fp1.00000000.00000000".to_owned(),
            "fp1.".to_owned(),
        ] {
            let hash = SecretHash::new(text.clone());
            assert_eq!(key(1).check("x", &hash), Precheck::Absent, "{text}");
            assert_eq!(hash.phc(), text);
        }
    }

    #[test]
    fn unknown_ids_mismatch_for_any_secret() {
        let key = key(1);
        for secret in ["a", "b", "00000000000000000000000000000000"] {
            assert_eq!(key.check_unknown(secret), Precheck::Mismatch);
        }
    }

    #[test]
    fn the_key_prints_no_material() {
        assert_eq!(format!("{:?}", key(1)), "FingerprintKey(<redacted>)");
    }
}
