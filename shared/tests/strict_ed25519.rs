//! The Ed25519 edge cases of Chalkias, Garillot and Nikolaenko, "Taming the
//! many EdDSAs" (SSR 2020, <https://eprint.iacr.org/2020/1244>), as
//! published in `cases.txt` of
//! <https://github.com/novifinancial/ed25519-speccheck> (vectors 0–11,
//! retyped below), against ed25519-dalek's `verify_strict` (PROTOCOL §2),
//! and `strict::verify`, on which `message::verify` is built, against
//! `verify_strict` on those and on generated keys and R with torsion
//! components.
//!
//! These vectors sign bare 32-byte messages, so they exercise the primitive,
//! not sealchain's domain-separated signing input; the same cases built over
//! real sealchain messages are refused by `message::verify`, the auditor and
//! the node in `tests/tests/validation.rs` (`strict_ed25519_401`).
//!
//! What is pinned here is the speccheck results table for Dalek and Dalek
//! strict: plain RFC 8032 verification accepts vectors 0–3 and 11, strict
//! verification only vector 3 (mixed-order points, which are not small).
//! A `legacy_compatibility` feature reaching ed25519-dalek through any
//! crate of the build would make it accept `S ≥ L` (vector 6) and fail here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

mod curve;
use curve::{bytes32, small_order_points};

/// (message, public key, signature), speccheck `cases.txt` order.
const VECTORS: [(&str, &str, &str); 12] = [
    // 0: S = 0, A and R of small order (R = -A).
    (
        "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a\
         0000000000000000000000000000000000000000000000000000000000000000",
    ),
    // 1: A of small order, R mixed.
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43\
         a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
    // 2: A mixed, R of small order.
    (
        "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa\
         8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
    ),
    // 3: A and R mixed; passes cofactored and cofactorless verification.
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f\
         87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
    ),
    // 4: passes cofactored verification only.
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed512\
         5ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
    ),
    // 5: passes cofactored verification only if k is not reduced first.
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7\
         e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
    ),
    // 6: S > L (its top three bits clear).
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e\
         547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
    ),
    // 7: S > L with its top bits set.
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa1942\
         7e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
    ),
    // 8, 9: R non-canonically encoded (a small-order point).
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
         03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
    ),
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
         ca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
    ),
    // 10, 11: A non-canonically encoded (a small-order point).
    (
        "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dc\
         a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
    (
        "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dc\
         a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
];

/// L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 §5.1),
/// little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn vector(i: usize) -> (Vec<u8>, [u8; 32], [u8; 64]) {
    let (msg, key, sig) = VECTORS[i];
    (
        hex::decode(msg).unwrap(),
        hex::decode(key).unwrap().try_into().unwrap(),
        hex::decode(sig).unwrap().try_into().unwrap(),
    )
}

/// (plain RFC 8032 `verify`, `verify_strict`) of one vector.
fn results(msg: &[u8], key: &[u8; 32], sig: &[u8; 64]) -> (bool, bool) {
    let Ok(key) = VerifyingKey::from_bytes(key) else {
        return (false, false);
    };
    let sig = Signature::from_bytes(sig);
    (key.verify(msg, &sig).is_ok(), key.verify_strict(msg, &sig).is_ok())
}

/// `s - L` while `s ≥ L` (little-endian, 256 bits): `s mod L`.
fn reduce(mut s: [u8; 32]) -> [u8; 32] {
    let at_least_l = |s: &[u8; 32]| s.iter().rev().cmp(L.iter().rev()).is_ge();
    while at_least_l(&s) {
        let mut borrow = 0i16;
        for (byte, l) in s.iter_mut().zip(L) {
            let d = i16::from(*byte) - i16::from(l) - borrow;
            borrow = i16::from(d < 0);
            *byte = d.rem_euclid(256) as u8;
        }
    }
    s
}

#[test]
fn speccheck_vectors_pass_plain_verification_but_strict_accepts_only_vector_3() {
    // The speccheck results table, rows "Dalek" and "Dalek strict".
    let plain = [
        true, true, true, true, false, false, false, false, false, false, false, true,
    ];
    let strict = [
        false, false, false, true, false, false, false, false, false, false, false, false,
    ];
    for i in 0..VECTORS.len() {
        let (msg, key, sig) = vector(i);
        assert_eq!(results(&msg, &key, &sig), (plain[i], strict[i]), "vector {i}");
    }
}

#[test]
fn speccheck_small_order_points_are_what_the_paper_says() {
    // Vectors 0 and 1: the key is of small order, so `verify_strict`
    // refuses it although the plain equation holds.
    for i in [0, 1] {
        let (_, key, _) = vector(i);
        assert!(VerifyingKey::from_bytes(&key).unwrap().is_weak(), "vector {i}");
    }
    // Vector 2: the key is not (it is mixed), R is.
    let (_, key, sig) = vector(2);
    assert!(!VerifyingKey::from_bytes(&key).unwrap().is_weak());
    let r: [u8; 32] = sig[..32].try_into().unwrap();
    assert!(VerifyingKey::from_bytes(&r).unwrap().is_weak(), "R of vector 2");
}

#[test]
fn speccheck_s_at_least_l_is_the_only_fault_of_vectors_6_and_7() {
    for i in [6, 7] {
        let (msg, key, sig) = vector(i);
        let s: [u8; 32] = sig[32..].try_into().unwrap();
        let reduced = reduce(s);
        assert_ne!(reduced, s, "vector {i}: S is not canonical");
        let mut canonical = sig;
        canonical[32..].copy_from_slice(&reduced);
        // The same scalar, canonically encoded, verifies strictly.
        assert_eq!(results(&msg, &key, &canonical), (true, true), "vector {i} reduced");
        assert_eq!(results(&msg, &key, &sig), (false, false), "vector {i} as published");
    }
}

/// `message::verify_cached` (which keeps decoded sender keys per thread)
/// answers exactly what `message::verify` answers, the first time and from
/// its cache, for valid signatures, small-order and mixed keys and R,
/// non-canonical S, keys that do not decode, and after its cache overflows.
#[test]
fn the_key_cache_accepts_and_refuses_exactly_what_strict_verification_does() {
    use ed25519_dalek::SigningKey;
    use sealchain_shared::message;

    let bytes = br#"{"v":1,"topic":"t"}"#;
    let mut cases: Vec<([u8; 32], Vec<u8>, [u8; 64])> = Vec::new();
    // The speccheck keys and signatures, over a sealchain signing input and
    // over the signing input their signature was made for (none verifies as
    // a sealchain signature; what counts is that both functions agree).
    for i in 0..VECTORS.len() {
        let (msg, key, sig) = vector(i);
        cases.push((key, bytes.to_vec(), sig));
        cases.push((key, msg, sig));
    }
    // A key that does not decode (no point has this y).
    let undecodable = (0u8..=255)
        .map(|b| {
            let mut k = [0u8; 32];
            k[0] = b;
            k[31] = 0x7f;
            k
        })
        .find(|k| VerifyingKey::from_bytes(k).is_err())
        .expect("some y is not on the curve");
    cases.push((undecodable, bytes.to_vec(), [0; 64]));
    // Valid signatures from more senders than the cache holds, each also
    // with a changed message and with S + L (the same scalar, not canonical).
    for seed in 0..4200u32 {
        let mut secret = [0u8; 32];
        secret[..4].copy_from_slice(&seed.to_le_bytes());
        let key = SigningKey::from_bytes(&secret);
        let sig = message::sign(&key, bytes).to_bytes();
        let public = key.verifying_key().to_bytes();
        cases.push((public, bytes.to_vec(), sig));
        if seed % 100 == 0 {
            cases.push((public, b"{}".to_vec(), sig));
            let mut s_plus_l = sig;
            let mut carry = 0u16;
            for (b, l) in s_plus_l[32..].iter_mut().zip(L) {
                let sum = u16::from(*b) + u16::from(l) + carry;
                *b = sum as u8;
                carry = sum >> 8;
            }
            cases.push((public, bytes.to_vec(), s_plus_l));
        }
    }
    let mut accepted = 0;
    for round in 0..2 {
        for (i, (key, msg, sig)) in cases.iter().enumerate() {
            let expected = message::verify(key, msg, sig);
            assert_eq!(
                message::verify_cached(key, msg, sig),
                expected,
                "case {i}, round {round}"
            );
            accepted += usize::from(expected.is_ok());
        }
    }
    // The 4,200 valid signatures, twice; nothing else.
    assert_eq!(accepted, 2 * 4200);
}

/// `strict::verify` (the node's and the auditor's check, which never
/// decodes R) answers exactly what ed25519-dalek's `verify_strict` answers:
/// on the speccheck vectors; on signatures whose key and R carry torsion
/// components (strict verification accepts some of those, as it accepts
/// vector 3, and refuses the rest); on small-order keys and R; on every
/// byte of valid signatures changed; on S + L; and on non-canonical
/// encodings of R.
#[test]
fn strict_verify_without_decoding_r_answers_exactly_what_verify_strict_answers() {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::IsIdentity;
    use sealchain_shared::strict;
    use sha2::{Digest, Sha512};

    let (mut accepted, mut refused) = (0usize, 0usize);
    let mut agree = |key: &[u8; 32], msg: &[u8], sig: &[u8; 64]| -> bool {
        let vk = VerifyingKey::from_bytes(key).expect("every key here decodes");
        let expected = vk.verify_strict(msg, &Signature::from_bytes(sig)).is_ok();
        let got = strict::verify(&vk, &[msg], sig);
        assert_eq!(
            got,
            expected,
            "key {}, signature {}",
            hex::encode(key),
            hex::encode(sig)
        );
        if expected {
            accepted += 1;
        } else {
            refused += 1;
        }
        expected
    };
    for i in 0..VECTORS.len() {
        let (msg, key, sig) = vector(i);
        if VerifyingKey::from_bytes(&key).is_ok() {
            agree(&key, &msg, &sig);
        }
    }

    let torsion = small_order_points();

    // Key aB + T, R = rB + T', S = r + k a: the equation gives
    // [S]B - [k]A = rB - [k]T, so strict verification accepts exactly when
    // T' = -[k]T; with a = 0 the key, with r = 0 R, is of small order.
    let mut mixed_accepted = 0;
    let mut valid = Vec::new();
    for i in 0..3000u32 {
        let a = if i % 50 == 7 {
            Scalar::ZERO
        } else {
            Scalar::from_bytes_mod_order(bytes32("a", i))
        };
        let r = if i % 37 == 5 {
            Scalar::ZERO
        } else {
            Scalar::from_bytes_mod_order(bytes32("r", i))
        };
        let (t, t_r) = (torsion[i as usize % 8], torsion[(i as usize / 8) % 8]);
        let key = (B * a + t).compress().to_bytes();
        let big_r = (B * r + t_r).compress().to_bytes();
        let msg = bytes32("m", i);
        let k = Scalar::from_hash(Sha512::new().chain_update(big_r).chain_update(key).chain_update(msg));
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&big_r);
        sig[32..].copy_from_slice((r + k * a).as_bytes());
        let ok = agree(&key, &msg, &sig);
        if ok && !t.is_identity() && !t_r.is_identity() {
            mixed_accepted += 1;
        }
        if ok && t.is_identity() && t_r.is_identity() {
            valid.push((key, msg, sig));
        }
    }
    assert!(
        mixed_accepted > 0,
        "some signatures with mixed-order key and R are strictly valid"
    );

    // Valid signatures changed: every byte in turn; S + L (the same scalar,
    // not canonical); R encoded with y + p (y < 19), which no encoding of
    // R' ever is.
    for (key, msg, sig) in valid.iter().take(40) {
        for at in 0..64 {
            let mut changed = *sig;
            changed[at] ^= 0x01 << (at % 8);
            assert!(!agree(key, msg, &changed), "byte {at} changed");
        }
        let mut s_plus_l = *sig;
        let mut carry = 0u16;
        for (b, l) in s_plus_l[32..].iter_mut().zip(L) {
            let sum = u16::from(*b) + u16::from(l) + carry;
            *b = sum as u8;
            carry = sum >> 8;
        }
        assert!(!agree(key, msg, &s_plus_l));
    }
    let (key, msg, sig) = valid[0];
    for low in 0xedu8..=0xff {
        let mut non_canonical = sig;
        non_canonical[..32].copy_from_slice(&[0xff; 32]);
        non_canonical[0] = low;
        non_canonical[31] = 0x7f;
        agree(&key, &msg, &non_canonical);
    }
    assert!(
        accepted > 300 && refused > 2000,
        "{accepted} accepted, {refused} refused"
    );
}
