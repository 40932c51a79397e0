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
mod tests;
