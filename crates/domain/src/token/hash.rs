//! argon2id hashes of token secrets: made with a random salt, stored as PHC
//! strings, and checked in bounded, reused memory.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use rand::{CryptoRng, RngCore};

/// Hashes a token secret with argon2id (the crate's default parameters) and a
/// random salt, as a PHC string.
pub fn hash_secret<R: RngCore + CryptoRng>(
    secret: &str,
    rng: &mut R,
) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(rng);
    Ok(Argon2::default()
        .hash_password(secret.as_bytes(), &salt)?
        .to_string())
}

/// An argon2id PHC hash of a token secret, as stored. Not the secret, but
/// an offline-guessing target: its `Debug` prints none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    /// Wraps a PHC string as read or written.
    #[must_use]
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, to store or verify against.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SecretHash {
    fn from(phc: &str) -> Self {
        Self(phc.to_owned())
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

/// The largest argon2 memory cost a stored hash may ask for, in KiB (four
/// times the crate default): a hash asking for more is treated as corrupt,
/// so no row can make a verification allocate without bound.
pub const MAX_ARGON2_MEMORY_KIB: u32 = 4 * argon2::Params::DEFAULT_M_COST;

/// argon2's working memory, kept by a verifying thread and reused, so that
/// each verification does not allocate (and the allocator retain) ~19 MiB.
#[derive(Default)]
pub struct Argon2Memory(Vec<argon2::Block>);

impl fmt::Debug for Argon2Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Argon2Memory({} blocks)", self.0.len())
    }
}

/// Checks a secret against its PHC hash; the comparison is constant-time.
/// Costly (tens of milliseconds): callers cache a successful verification.
#[must_use]
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    verify_secret_with(secret, phc, &mut Argon2Memory::default())
}

/// [`verify_secret`] in `memory`, which it grows to the hash's memory cost
/// and leaves allocated for the next call. A hash that does not parse, or
/// asks for more than [`MAX_ARGON2_MEMORY_KIB`], verifies nothing.
#[must_use]
pub fn verify_secret_with(secret: &str, phc: &str, memory: &mut Argon2Memory) -> bool {
    use subtle::ConstantTimeEq;
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version)) = (
        argon2::Algorithm::try_from(hash.algorithm),
        hash.version
            .map_or(Ok(argon2::Version::default()), argon2::Version::try_from),
    ) else {
        return false;
    };
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    memory.0.resize(blocks, argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(secret.as_bytes(), salt, &mut out, &mut memory.0[..blocks])
        .is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
}
