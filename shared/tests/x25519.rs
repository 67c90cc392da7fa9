//! `hpke::x25519`, which computes X25519 on the Edwards form of the curve
//! where the point has one, against RFC 7748 §5.2 and against
//! `x25519-dalek`'s Montgomery ladder on every kind of input: points of the
//! curve and of its twist, torsion components, small-order points,
//! non-canonical encodings and the ignored top bit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use sealchain_shared::hpke::x25519;
use x25519_dalek::StaticSecret;

mod curve;
use curve::{bytes32, small_order_points};

/// The reference: `x25519-dalek`'s Montgomery ladder.
fn ladder(secret: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*secret, *u)
}

fn ours(secret: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
    *x25519(&StaticSecret::from(*secret), u)
}

fn assert_same(secret: &[u8; 32], u: &[u8; 32]) {
    assert_eq!(ours(secret, u), ladder(secret, u), "u = {}", hex::encode(u));
}

/// `2^255 - 256 + low`, little-endian: `low = 0xec` is p - 1 and
/// `0xed ..= 0xff` are p .. 2^255 - 1 (p = 2^255 - 19).
fn near_p(low: u8) -> [u8; 32] {
    let mut u = [0xffu8; 32];
    u[0] = low;
    u[31] = 0x7f;
    u
}

#[test]
fn x25519_matches_rfc_7748_section_5_2() {
    let vectors = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (scalar, u, out) in vectors {
        let scalar: [u8; 32] = hex::decode(scalar).unwrap().try_into().unwrap();
        let u: [u8; 32] = hex::decode(u).unwrap().try_into().unwrap();
        assert_eq!(hex::encode(ours(&scalar, &u)), out);
    }
    // The iterated test: k, u <- x25519(k, u), k.
    let (mut k, mut u) = ([0u8; 32], [0u8; 32]);
    (k[0], u[0]) = (9, 9);
    for round in 1..=1000 {
        let next = ours(&k, &u);
        (u, k) = (k, next);
        if round == 1 {
            assert_eq!(
                hex::encode(k),
                "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
            );
        }
    }
    assert_eq!(
        hex::encode(k),
        "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
    );
}

#[test]
fn x25519_matches_the_ladder_on_curve_and_twist_points() {
    let (mut on_curve, mut on_twist) = (0, 0);
    for i in 0..4000 {
        let (secret, u) = (bytes32("secret", i), bytes32("u", i));
        match MontgomeryPoint(u).to_edwards(0) {
            Some(_) => on_curve += 1,
            None => on_twist += 1,
        }
        assert_same(&secret, &u);
    }
    // Random strings land on the curve and on its twist about equally
    // often, so both paths were compared.
    assert!(
        on_curve > 1500 && on_twist > 1500,
        "{on_curve} on the curve, {on_twist} on the twist"
    );
}

#[test]
fn x25519_matches_the_ladder_on_points_with_a_torsion_component() {
    let torsion = small_order_points();
    for i in 0..400 {
        let prime = ED25519_BASEPOINT_POINT * Scalar::from_bytes_mod_order(bytes32("r", i));
        let t = torsion[i as usize % 8];
        let u = (prime + t).to_montgomery().to_bytes();
        assert_same(&bytes32("secret", i), &u);
    }
}

#[test]
fn x25519_matches_the_ladder_on_small_order_and_exceptional_encodings() {
    let mut inputs: Vec<[u8; 32]> = small_order_points()
        .iter()
        .map(|t| t.to_montgomery().to_bytes())
        .collect();
    // Small canonical u; u = p - 1 (-1), which has no Edwards point; and
    // every non-canonical u (p .. 2^255 - 1), which RFC 7748 reads
    // modulo p.
    for k in 0..=40u8 {
        let mut small = [0u8; 32];
        small[0] = k;
        inputs.push(small);
    }
    inputs.extend((0xec..=0xff).map(near_p));
    // The top bit is ignored: each input again with it set.
    let with_top_bit: Vec<[u8; 32]> = inputs
        .iter()
        .map(|u| {
            let mut u = *u;
            u[31] |= 0x80;
            u
        })
        .collect();
    inputs.extend(with_top_bit);
    for (i, u) in inputs.iter().enumerate() {
        assert_same(&bytes32("secret", i as u32), u);
    }
    // Every small-order u gives the all-zero output the KEM refuses.
    for t in small_order_points() {
        let u = t.to_montgomery().to_bytes();
        assert_eq!(*x25519(&StaticSecret::from(bytes32("secret", 1)), &u), [0u8; 32]);
    }
}
