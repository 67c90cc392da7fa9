//! Signatures that only strict Ed25519 verification refuses (PROTOCOL §2:
//! "non-canonical and small-order encodings are rejected").
//!
//! The edge cases come from Chalkias, Garillot and Nikolaenko, "Taming the
//! many EdDSAs" (SSR 2020, <https://eprint.iacr.org/2020/1244>), whose test
//! vectors are published as `cases.txt` of
//! <https://github.com/novifinancial/ed25519-speccheck>. Those vectors sign
//! bare 32-byte messages. sealchain signs `"sealchain/message/v1" || 0x00 ||
//! message_bytes`, where `message_bytes` is a JSON object whose `sender`
//! must be the key itself, so no published (key, signature, message) triple
//! can be sent as it is. Each builder here makes the equivalent case over a
//! real sealchain message:
//!
//! - [`small_order_sender`]: the published key and signature of speccheck
//!   vector 0 (a public key of order 8, `R = -A`, `S = 0`) over a message
//!   whose nonce is chosen so that the vector's own condition holds again
//!   (`k ≡ 1 mod 8`). Anyone can make it: a small-order key has no secret.
//! - [`small_order_r`]: an honest sender's key with `R` = the identity, a
//!   point of order one, and `S = k·a`, which satisfies the cofactorless
//!   equation `[S]B = R + [k]A` of RFC 8032 §5.1.7.
//! - [`small_order_r_cofactored`]: `R` = the order-8 point of vector 0 and
//!   `S = k·a`: it satisfies only the cofactored equation `[8][S]B = [8]R +
//!   [8][k]A` (as speccheck vector 2 does for its own message).
//! - [`with_s_plus_l`]: an honest signature whose `S` is re-encoded as
//!   `S + L`, the same scalar modulo the group order `L` (as speccheck
//!   vectors 6 and 7 are, for theirs).
//!
//! Here `k = SHA-512(R || A || signing input) mod L` and `a` is the sender's
//! secret scalar. The checks a lenient verifier would make are
//! [`lenient_verify`] (ed25519-dalek's RFC 8032 `verify`) and
//! [`cofactored_verify`]; tests use them to show that each case is the edge
//! case it claims to be.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::Verifier;
use sealchain_shared::message::{self, MessageBuilder, SignedMessage};
use sealchain_shared::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};

/// Speccheck vector 0's public key: a point of order 8.
pub const VECTOR0_PUBLIC_KEY: &str = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa";
/// Speccheck vector 0's signature: `R` = the same point negated (the sign
/// bit of the last byte flipped, also of order 8), `S = 0`.
pub const VECTOR0_SIGNATURE: &str = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a\
                                     0000000000000000000000000000000000000000000000000000000000000000";
/// The identity point (0, 1): order 1, the smallest small-order point.
pub const IDENTITY: [u8; 32] = {
    let mut b = [0; 32];
    b[0] = 1;
    b
};
/// L = 2^252 + 27742317777372353535851937790883648493, the order of the
/// base point (RFC 8032 §5.1), little-endian.
pub const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Hex to a fixed-size array (for the constants above).
pub fn bytes<const N: usize>(hex_text: &str) -> [u8; N] {
    let v = hex::decode(hex_text).expect("hex constant");
    v.try_into().expect("constant length")
}

/// RFC 8032 §5.1.7 without the small-order checks (cofactorless, as
/// ed25519-dalek's `verify`), over sealchain's signing input.
pub fn lenient_verify(sender: &[u8; 32], message_bytes: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(sender).is_ok_and(|key| {
        key.verify(
            &message::signing_input(message_bytes),
            &Signature::from_bytes(signature),
        )
        .is_ok()
    })
}

/// The cofactored equation `[8][S]B = [8]R + [8][k]A`, over sealchain's
/// signing input (what a ZIP-215 style verifier checks).
pub fn cofactored_verify(sender: &[u8; 32], message_bytes: &[u8], signature: &[u8; 64]) -> bool {
    let (r_bytes, s_bytes) = split(signature);
    let (Some(a), Some(r)) = (
        CompressedEdwardsY(*sender).decompress(),
        CompressedEdwardsY(r_bytes).decompress(),
    ) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let k = challenge(&r_bytes, sender, message_bytes);
    (EdwardsPoint::mul_base(&s) - r - k * a).mul_by_cofactor().is_identity()
}

fn split(signature: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0; 32];
    let mut s = [0; 32];
    r.copy_from_slice(&signature[..32]);
    s.copy_from_slice(&signature[32..]);
    (r, s)
}

/// `k = SHA-512(R || A || "sealchain/message/v1" || 0x00 || message_bytes) mod L`.
fn challenge(r: &[u8; 32], a: &[u8; 32], message_bytes: &[u8]) -> Scalar {
    let digest = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(message::signing_input(message_bytes))
        .finalize();
    let mut wide = [0; 64];
    wide.copy_from_slice(&digest);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// `(R, S = k·a)` for an honest key and a chosen `R`.
fn sign_with_r(key: &SigningKey, r: [u8; 32], message_bytes: &[u8]) -> [u8; 64] {
    let k = challenge(&r, key.verifying_key().as_bytes(), message_bytes);
    let s = k * key.to_scalar();
    let mut signature = [0; 64];
    signature[..32].copy_from_slice(&r);
    signature[32..].copy_from_slice(s.as_bytes());
    signature
}

/// A message from `key` to the node `node_key`, its nonce set to `nonce`.
fn message_bytes(key: &VerifyingKey, node_key: [u8; 32], nonce: [u8; 16]) -> Vec<u8> {
    MessageBuilder::new(node_key, "edge/cases", &serde_json::json!({"strict": true}))
        .expect("topic")
        .nonce(nonce)
        .to_bytes(key)
        .expect("message bytes")
}

/// A message whose `sender` is speccheck vector 0's order-8 key, signed
/// with vector 0's signature: the nonce is searched until `k ≡ 1 (mod 8)`,
/// the condition vector 0 was built on, so lenient verification accepts it
/// (one nonce in eight does).
pub fn small_order_sender(node_key: [u8; 32]) -> SignedMessage {
    let sender: [u8; 32] = bytes(VECTOR0_PUBLIC_KEY);
    let signature: [u8; 64] = bytes(VECTOR0_SIGNATURE);
    let key = VerifyingKey::from_bytes(&sender).expect("a point on the curve");
    for n in 0u64..1024 {
        let mut nonce = [0xa0; 16];
        nonce[8..].copy_from_slice(&n.to_be_bytes());
        let text = message_bytes(&key, node_key, nonce);
        if lenient_verify(&sender, &text, &signature) {
            return SignedMessage {
                signature,
                message_bytes: text,
            };
        }
    }
    // (7/8)^1024 < 10^-59.
    panic!("no nonce in 1024 makes vector 0's signature verify leniently")
}

/// A message from `key` signed with `R` = the identity and `S = k·a`.
pub fn small_order_r(key: &SigningKey, node_key: [u8; 32]) -> SignedMessage {
    let text = message_bytes(&key.verifying_key(), node_key, [0xb1; 16]);
    SignedMessage {
        signature: sign_with_r(key, IDENTITY, &text),
        message_bytes: text,
    }
}

/// A message from `key` signed with `R` = vector 0's order-8 point and
/// `S = k·a`.
pub fn small_order_r_cofactored(key: &SigningKey, node_key: [u8; 32]) -> SignedMessage {
    let text = message_bytes(&key.verifying_key(), node_key, [0xb2; 16]);
    SignedMessage {
        signature: sign_with_r(key, bytes(VECTOR0_PUBLIC_KEY), &text),
        message_bytes: text,
    }
}

/// The same message and `R`, with `S` re-encoded as `S + L` (256-bit
/// little-endian addition; `S < L < 2^253`, so it cannot overflow).
pub fn with_s_plus_l(signed: &SignedMessage) -> SignedMessage {
    let mut signature = signed.signature;
    let mut carry = 0u16;
    for (byte, l) in signature[32..].iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes");
    SignedMessage {
        signature,
        message_bytes: signed.message_bytes.clone(),
    }
}

/// Whether the 32-byte little-endian `s` is at least `L` (not canonical).
pub fn at_least_l(s: &[u8]) -> bool {
    for (a, b) in s.iter().rev().zip(L.iter().rev()) {
        if a != b {
            return a > b;
        }
    }
    true
}
