//! The proof verifiers (RFC 6962 inclusion, RFC 9162 consistency): random
//! proofs never panic, and proofs made from a tree the input describes
//! always verify — and stop verifying when one bit changes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealchain_shared::Hash;
use sealchain_shared::merkle::{leaf_hash, root, verify_inclusion};
use sealchain_shared::tlog::{consistency_proof, inclusion_proof, verify_consistency};

fn hash(bytes: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    for (i, b) in bytes.iter().take(32).enumerate() {
        h[i] = *b;
    }
    h
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let a = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    let b = u64::from_le_bytes(data[8..16].try_into().unwrap_or_default());
    let path: Vec<Hash> = data[16..].chunks(32).map(hash).collect();
    // Random inputs: any answer but a panic.
    let _ = verify_inclusion(a, b, &path[0], &path[1..], &path[path.len() - 1]);
    let _ = verify_consistency(a, b, &path[0], &path[path.len() - 1], &path[1..]);

    // A real tree of up to 300 leaves named by the input.
    let size = 1 + (b % 300);
    let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&[data[16], i as u8, (i >> 8) as u8])).collect();
    let mut source: &[Hash] = &leaves;
    let index = a % size;
    let full = root(&leaves);
    let proof = inclusion_proof(&mut source, index, size).unwrap().unwrap();
    verify_inclusion(index, size, &leaves[index as usize], &proof, &full).expect("a real inclusion proof verifies");
    let old = 1 + (a % size);
    let old_root = root(&leaves[..old as usize]);
    let consistency = consistency_proof(&mut source, old, size).unwrap().unwrap();
    verify_consistency(old, size, &old_root, &full, &consistency).expect("a real consistency proof verifies");
    if let Some(first) = consistency.first() {
        let mut bad = consistency.clone();
        bad[0] = hash(&[first[0] ^ 1]);
        bad[0][1..].copy_from_slice(&first[1..]);
        assert!(verify_consistency(old, size, &old_root, &full, &bad).is_err(), "a changed proof fails");
    }
});
