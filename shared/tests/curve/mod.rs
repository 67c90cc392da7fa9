//! Points and bytes the curve tests (`x25519.rs`, `strict_ed25519.rs`) build
//! their edge cases from.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha256};

/// Deterministic pseudo-random 32 bytes: SHA-256 of a label and a counter.
pub(crate) fn bytes32(label: &str, i: u32) -> [u8; 32] {
    Sha256::new()
        .chain_update(label)
        .chain_update(i.to_be_bytes())
        .finalize()
        .into()
}

/// The eight points of small order, found as `[L]Q` of points `Q` of the
/// whole curve (`[L]Q` keeps only `Q`'s torsion component; `[L]` is
/// computed as `[L - 1]Q + Q`, since a scalar is reduced modulo L).
pub(crate) fn small_order_points() -> Vec<EdwardsPoint> {
    let mut found: Vec<EdwardsPoint> = Vec::new();
    for i in 0.. {
        let Some(q) = CompressedEdwardsY(bytes32("point", i)).decompress() else {
            continue;
        };
        let torsion = q * (Scalar::ZERO - Scalar::ONE) + q;
        assert!(torsion.is_small_order());
        if !found.contains(&torsion) {
            found.push(torsion);
        }
        if found.len() == 8 {
            break;
        }
    }
    found
}
