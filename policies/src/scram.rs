//! SCRAM-SHA-256 password verifiers (RFC 5802, RFC 7677), stored as PostgreSQL stores them.
//!
//! A verifier is `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64
//! parts), the exact text of `pg_authid.rolpassword`, so verifiers move between Amar
//! and PostgreSQL unchanged. Neither the password nor the salted password (which is
//! password-equivalent for SCRAM) is ever stored: a stolen users file lets nobody log in.
//!
//! The wire exchange itself lives in the server; this module only does the key math.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, hmac, pbkdf2};
use subtle::ConstantTimeEq;

use crate::error::{PolicyError, Result};

/// PostgreSQL's default `scram_iterations`.
pub const DEFAULT_ITERATIONS: u32 = 4096;
const PREFIX: &str = "SCRAM-SHA-256$";

/// A stored SCRAM-SHA-256 verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are secret enough not to end up in logs.
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramVerifier {
    /// A new verifier for `password`, with a fresh random salt.
    pub fn new(password: &str) -> Result<Self> {
        if password.is_empty() {
            return Err(PolicyError::EmptyPassword);
        }
        let salt: [u8; 16] = rand::random();
        Ok(Self::from_password(password, &salt, DEFAULT_ITERATIONS))
    }

    /// The verifier `password` gives with this salt and iteration count.
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = salted_password(password, salt, iterations);
        Self::from_salted(&salted, salt, iterations)
    }

    fn from_salted(salted: &[u8; 32], salt: &[u8], iterations: u32) -> Self {
        let client_key = hmac_sha256(salted, b"Client Key");
        Self {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(salted, b"Server Key"),
        }
    }

    /// A verifier that no password matches, derived from `seed` so that repeated
    /// attempts for one unknown user see the same salt (as PostgreSQL's mock
    /// authentication does): probing names does not reveal which users exist.
    pub fn mock(seed: &[u8]) -> Self {
        let digest = sha256(seed);
        let salt = digest[..16].to_vec();
        let mut stored_key = sha256(&digest);
        // No client key hashes to this value in practice; flip it for good measure.
        stored_key[0] ^= 0xff;
        Self {
            iterations: DEFAULT_ITERATIONS,
            salt,
            stored_key,
            server_key: sha256(&stored_key),
        }
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// Checks a client proof over `auth_message` (RFC 5802 §3), in constant time.
    pub fn verify_client_proof(&self, auth_message: &[u8], proof: &[u8]) -> bool {
        if proof.len() != 32 {
            return false;
        }
        let signature = hmac_sha256(&self.stored_key, auth_message);
        let mut client_key = [0u8; 32];
        for (i, byte) in client_key.iter_mut().enumerate() {
            *byte = proof[i] ^ signature[i];
        }
        sha256(&client_key).ct_eq(&self.stored_key).into()
    }

    /// The server signature that proves to the client that we hold the verifier.
    pub fn server_signature(&self, auth_message: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.server_key, auth_message)
    }

    /// Checks a cleartext password (for front ends that receive one, over TLS), in
    /// constant time with respect to the stored keys.
    pub fn verify_password(&self, password: &str) -> bool {
        let candidate = Self::from_password(password, &self.salt, self.iterations);
        candidate.stored_key.ct_eq(&self.stored_key).into()
    }

    /// Parses PostgreSQL's text form.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| PolicyError::InvalidVerifier(why.to_string());
        let rest = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad("expected it to start with SCRAM-SHA-256$"))?;
        let (params, keys) = rest.split_once('$').ok_or_else(|| {
            bad("expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>")
        })?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or_else(|| bad("expected <iterations>:<salt>"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or_else(|| bad("expected <StoredKey>:<ServerKey>"))?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad("the iteration count is not a positive number"))?;
        let salt = B64
            .decode(salt)
            .map_err(|_| bad("the salt is not base64"))?;
        let decode_key = |s: &str, what: &str| -> Result<[u8; 32]> {
            B64.decode(s)
                .ok()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .ok_or_else(|| bad(&format!("the {what} is not a base64 SHA-256 value")))
        };
        Ok(Self {
            iterations,
            salt,
            stored_key: decode_key(stored, "StoredKey")?,
            server_key: decode_key(server, "ServerKey")?,
        })
    }
}

impl std::fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// `Hi(Normalize(password), salt, i)` of RFC 5802, with SASLprep as PostgreSQL
/// applies it (falling back to the raw bytes when the password is not valid
/// stringprep input).
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let normalized = stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| password.to_string());
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        normalized.as_bytes(),
        &mut out,
    );
    out
}

/// HMAC-SHA-256 of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_postgres_text_form() {
        let v = ScramVerifier::new("secret").unwrap();
        let text = v.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"));
        let parsed = ScramVerifier::parse(&text).unwrap();
        assert_eq!(parsed, v);
        assert!(parsed.verify_password("secret"));
        assert!(!parsed.verify_password("Secret"));
    }

    #[test]
    fn rfc7677_test_vector() {
        // RFC 7677 §3: user "user", password "pencil".
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = ScramVerifier::from_password("pencil", &salt, 4096);
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final_no_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{client_first_bare},{server_first},{client_final_no_proof}");
        let proof = B64
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert!(v.verify_client_proof(auth.as_bytes(), &proof));
        assert_eq!(
            B64.encode(v.server_signature(auth.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let mut wrong = proof.clone();
        wrong[0] ^= 1;
        assert!(!v.verify_client_proof(auth.as_bytes(), &wrong));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "md5abc",
            "SCRAM-SHA-256$x:AA==$AA==:AA==",
            "SCRAM-SHA-256$4096:AA==$AA==",
            "SCRAM-SHA-256$4096:!!$AA==:AA==",
            "SCRAM-SHA-256$0:AA==$AA==:AA==",
        ] {
            assert!(ScramVerifier::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn mock_verifier_matches_no_password_and_is_stable() {
        let a = ScramVerifier::mock(b"nobody");
        assert_eq!(a, ScramVerifier::mock(b"nobody"));
        assert!(!a.verify_password(""));
        assert!(!a.verify_password("nobody"));
    }
}
