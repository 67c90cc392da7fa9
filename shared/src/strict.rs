//! Strict Ed25519 verification: what `ed25519-dalek`'s
//! `VerifyingKey::verify_strict` accepts, with one field exponentiation
//! fewer per signature.
//!
//! `verify_strict` decodes the signature's `R` (a field square root),
//! refuses `R` or the key `A` of small order, refuses `S ≥ L`, computes
//! `R' = [S]B - [k]A` with `k = SHA-512(R || A || M) mod L`, and accepts when
//! the encoding of `R'` (a field inversion) is `R`'s 32 bytes. [`verify`]
//! makes the same checks but never decodes `R`: it refuses `R'` of small
//! order instead of `R`. The two accept the same signatures:
//!
//! - if `verify_strict` accepts, `R`'s bytes are the encoding of `R'`;
//!   decoding an encoding gives the point back, so `R` is `R'`, and `R` is
//!   not of small order, so neither is `R'`;
//! - if [`verify`] accepts, `R`'s bytes are the encoding of `R'`, so they
//!   decode, to `R'`, which is not of small order.
//!
//! Everything else (the scalar checks, the hash, the double-base
//! multiplication, the byte comparison) is the same computation from
//! `curve25519-dalek`. `shared/tests/strict_ed25519.rs` compares the two on
//! the published edge cases and on keys and `R` with torsion components.

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};

/// `true` when `signature` is a strict Ed25519 signature by `key` over the
/// concatenation of `message` (hashed part by part, so a caller with a
/// prefix need not copy the message behind it).
pub fn verify(key: &VerifyingKey, message: &[&[u8]], signature: &[u8; 64]) -> bool {
    let (r, s) = signature.split_at(32);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(s);
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    if key.is_weak() {
        return false;
    }
    let mut hash = Sha512::new().chain_update(r).chain_update(key.as_bytes());
    for part in message {
        hash.update(part);
    }
    let k = Scalar::from_hash(hash);
    let expected = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-key.to_edwards(), &s);
    !expected.is_small_order() && expected.compress().as_bytes()[..] == *r
}
