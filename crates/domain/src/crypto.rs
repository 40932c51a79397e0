//! Keys and the AES-256-GCM envelope, on Infisical's wire scheme.
//!
//! A project key and a service token's key part are each the 32-character
//! lowercase hex text of 16 random bytes, and the AES-256 key is those 32
//! ASCII bytes. The root key that wraps project keys is 32 raw random bytes.
//! Encryption uses fresh random 12-byte nonces; decryption also accepts the
//! 16-byte IVs Infisical's clients use.

use std::fmt;

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{Aes256Gcm, AesGcm, Nonce, Tag};
use rand::{CryptoRng, RngCore};

/// GCM with the 16-byte IVs Infisical's clients produce.
type Aes256Gcm16 = AesGcm<Aes256, U16>;

/// NIST SP 800-38D's limit on random-nonce encryptions under one key: 2^32.
pub const ENCRYPTION_LIMIT: u64 = 1 << 32;

/// 90% of [`ENCRYPTION_LIMIT`]: from here on, rotating the key is recommended.
pub const ENCRYPTION_WARNING_THRESHOLD: u64 = 3_865_470_566;

/// True once `count` encryptions under one key reached the warning threshold.
#[must_use]
pub fn key_rotation_recommended(count: u64) -> bool {
    count >= ENCRYPTION_WARNING_THRESHOLD
}

/// Why decryption or key parsing failed. Deliberately vague: which check
/// failed is not the caller's business.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Wrong key, wrong associated data, or tampered ciphertext, IV or tag.
    #[error("decryption failed: wrong key, wrong context, or tampered data")]
    Decrypt,
    /// The IV is neither 12 nor 16 bytes, or the tag is not 16 bytes.
    #[error("malformed envelope: the IV must be 12 or 16 bytes and the tag 16 bytes")]
    Envelope,
    /// Key text of the wrong length or alphabet.
    #[error("malformed key: expected {0}")]
    Key(&'static str),
    /// Encryption failed (a plaintext past GCM's 64 GiB limit).
    #[error("encryption failed: the plaintext is longer than AES-GCM allows")]
    Encrypt,
}

/// A 128-bit key as 32 lowercase hex characters, whose ASCII bytes are the
/// AES-256 key. Project keys and service-token key parts are of this kind.
#[derive(Clone, PartialEq, Eq)]
pub struct WireKey(String);

impl WireKey {
    /// A fresh key from 16 random bytes.
    #[must_use]
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// Parses key text; it must be 32 lowercase hex characters.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        if is_lower_hex(text, 32) {
            Ok(Self(text.to_owned()))
        } else {
            Err(CryptoError::Key("32 lowercase hex characters"))
        }
    }

    /// Parses key text from decrypted bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        std::str::from_utf8(bytes)
            .map_err(|_| CryptoError::Key("32 lowercase hex characters"))
            .and_then(Self::parse)
    }

    /// The key text. Call only where the key must leave this type.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn aes_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.0.as_bytes());
        key
    }

    /// Encrypts with this key (see [`seal`]).
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        rng: &mut R,
    ) -> Result<Sealed, CryptoError> {
        seal(&self.aes_key(), plaintext, aad, rng)
    }

    /// Encrypts as Infisical's E2EE clients expect (their
    /// `encryptSymmetric128BitHexKeyUTF8`): a fresh random 16-byte IV and no
    /// associated data, the tag apart. Only for re-encrypting a plaintext
    /// answer to an older client; Latchkey's own ciphertexts use [`seal`].
    pub fn seal_for_infisical<R: RngCore + CryptoRng>(
        &self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Sealed, CryptoError> {
        let mut iv = [0u8; 16];
        rng.fill_bytes(&mut iv);
        let mut buf = plaintext.to_vec();
        let tag = Aes256Gcm16::new((&self.aes_key()).into())
            .encrypt_in_place_detached(
                aes_gcm::aead::generic_array::GenericArray::from_slice(&iv),
                b"",
                &mut buf,
            )
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(Sealed {
            ciphertext: buf,
            iv: iv.to_vec(),
            tag: tag.to_vec(),
        })
    }

    /// Decrypts with this key (see [`open`]).
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open(&self.aes_key(), sealed, aad)
    }
}

impl fmt::Debug for WireKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WireKey(<redacted>)")
    }
}

/// The 256-bit root key that wraps every project key.
#[derive(Clone)]
pub struct RootKey([u8; 32]);

impl RootKey {
    /// A fresh random root key.
    #[must_use]
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses 64 hex characters (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| CryptoError::Key("64 hex characters (32 bytes)"))?;
        Ok(Self(bytes))
    }

    /// The key as 64 hex characters, for writing a development key file.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Wraps a project key, bound to its project id.
    pub fn wrap<R: RngCore + CryptoRng>(
        &self,
        project_id: &str,
        key: &WireKey,
        rng: &mut R,
    ) -> Result<Sealed, CryptoError> {
        seal(
            &self.0,
            key.expose().as_bytes(),
            &project_key_aad(project_id),
            rng,
        )
    }

    /// A 256-bit key for one purpose, named by `label`: HMAC-SHA-256 of the
    /// label under the root key, so no derived key reveals another or the root.
    #[must_use]
    pub fn derive(&self, label: &str) -> [u8; 32] {
        hmac_sha256(&self.0, label.as_bytes())
    }

    /// Unwraps a project key wrapped for `project_id`.
    pub fn unwrap_key(&self, project_id: &str, sealed: &Sealed) -> Result<WireKey, CryptoError> {
        WireKey::from_bytes(&open(&self.0, sealed, &project_key_aad(project_id))?)
    }
}

/// HMAC-SHA-256 of `message` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC takes a key of any length, so this never fails.
    let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) else {
        return [0u8; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

/// An AES-256-GCM envelope, in Infisical's three parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sealed {
    /// Ciphertext, as long as the plaintext.
    pub ciphertext: Vec<u8>,
    /// Nonce: 12 bytes from Latchkey, 12 or 16 from other clients.
    pub iv: Vec<u8>,
    /// The 16-byte GCM tag.
    pub tag: Vec<u8>,
}

/// Encrypts `plaintext` under a 32-byte key with a fresh random 12-byte nonce,
/// authenticating `aad`. Fails, never returns a partial envelope, when the
/// cipher refuses (past GCM's 64 GiB plaintext limit).
pub fn seal<R: RngCore + CryptoRng>(
    key: &[u8; 32],
    plaintext: &[u8],
    aad: &[u8],
    rng: &mut R,
) -> Result<Sealed, CryptoError> {
    let cipher = Aes256Gcm::new(key.into());
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut iv);
    let mut buf = plaintext.to_vec();
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&iv), aad, &mut buf)
        .map_err(|_| CryptoError::Encrypt)?;
    Ok(Sealed {
        ciphertext: buf,
        iv: iv.to_vec(),
        tag: tag.to_vec(),
    })
}

/// Decrypts an envelope with a 12- or 16-byte IV, checking `aad`.
pub fn open(key: &[u8; 32], sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.tag.len() != 16 {
        return Err(CryptoError::Envelope);
    }
    let tag = Tag::from_slice(&sealed.tag);
    let mut buf = sealed.ciphertext.clone();
    let result = match sealed.iv.len() {
        12 => Aes256Gcm::new(key.into()).decrypt_in_place_detached(
            Nonce::from_slice(&sealed.iv),
            aad,
            &mut buf,
            tag,
        ),
        16 => Aes256Gcm16::new(key.into()).decrypt_in_place_detached(
            aes_gcm::aead::generic_array::GenericArray::from_slice(&sealed.iv),
            aad,
            &mut buf,
            tag,
        ),
        _ => return Err(CryptoError::Envelope),
    };
    result.map_err(|_| CryptoError::Decrypt)?;
    Ok(buf)
}

/// The associated data binding a secret value to where it lives, so a
/// ciphertext moved to another project, environment, path or name fails to
/// decrypt: `latchkey:v1\0<project>\0<env>\0<path>\0<name>`.
#[must_use]
pub fn secret_aad(project_id: &str, environment: &str, path: &str, name: &str) -> Vec<u8> {
    ["latchkey:v1", project_id, environment, path, name]
        .join("\0")
        .into_bytes()
}

/// The associated data binding a wrapped project key to its project.
#[must_use]
pub fn project_key_aad(project_id: &str) -> Vec<u8> {
    format!("latchkey:project-key:v1\0{project_id}").into_bytes()
}

/// Compares two byte strings in constant time (for keys and secrets).
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

pub(crate) fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
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
}
