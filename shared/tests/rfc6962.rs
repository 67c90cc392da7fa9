//! RFC 6962 §2.1 Merkle trees (PROTOCOL §5): roots, audit paths and
//! inclusion verification (the RFC 9162 §2.1.3.2 algorithm).
//!
//! - the roots of the RFC 6962 reference test leaves;
//! - a plain recursive `MTH` / `PATH` written from the RFC text, compared
//!   with the production code for every tree size up to 300 and every leaf;
//! - proptest properties: any single change to a proof is refused;
//! - transparency-dev/merkle's inclusion-proof conformance cases, read from
//!   `../shared/vectors/rfc6962` beside the repository, or the directory
//!   named by `SEALCHAIN_RFC6962_VECTORS`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use sealchain_shared::Hash;
use sealchain_shared::merkle::{self, ProofError};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// (a) Known roots.

/// The eight leaves of the RFC 6962 reference tests (certificate-transparency
/// `merkle_tree_test`, reused by transparency-dev/merkle).
const TEST_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `MTH(D[0:n])` for n = 1..=8 over [`TEST_LEAVES`].
const TEST_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `MTH({}) = SHA-256()`.
const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn test_leaf_hashes() -> Vec<Hash> {
    TEST_LEAVES
        .iter()
        .map(|d| merkle::leaf_hash(&hex::decode(d).unwrap()))
        .collect()
}

#[test]
fn rfc6962_known_roots() {
    assert_eq!(hex::encode(merkle::root(&[])), EMPTY_ROOT);
    assert_eq!(hex::encode(merkle::empty_root()), EMPTY_ROOT);
    let leaves = test_leaf_hashes();
    for (n, want) in (1..=8).zip(TEST_ROOTS) {
        assert_eq!(
            hex::encode(merkle::root(&leaves[..n])),
            want,
            "root of the first {n} leaves"
        );
        assert_eq!(
            hex::encode(reference::mth(&leaves[..n])),
            want,
            "reference root of {n} leaves"
        );
    }
}

#[test]
fn rfc6962_known_paths_verify() {
    // Every audit path of the reference trees leads to the known roots.
    let leaves = test_leaf_hashes();
    for (n, want) in (1..=8).zip(TEST_ROOTS) {
        let root: Hash = hex::decode(want).unwrap().try_into().unwrap();
        for m in 0..n {
            let path = merkle::audit_path(m, &leaves[..n]).unwrap();
            merkle::verify_inclusion(m as u64, n as u64, &leaves[m], &path, &root).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// (b) A reference implementation, written from RFC 6962 §2.1 and §2.1.1.

mod reference {
    use super::*;

    /// The largest power of two smaller than `n` (n > 1).
    pub(super) fn k(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn node(left: &Hash, right: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update([0x01]);
        h.update(left);
        h.update(right);
        h.finalize().into()
    }

    /// `MTH(D[n])`, over leaves that are already leaf-hashed (so that
    /// `MTH({d}) = SHA-256(0x00 || d)` is the given hash).
    pub(super) fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => Sha256::digest([]).into(),
            1 => d[0],
            n => {
                let k = k(n);
                node(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    /// `PATH(m, D[n])`: `PATH(m, {d}) = {}`; for m < k,
    /// `PATH(m, D[0:k]) : MTH(D[k:n])`; for m >= k,
    /// `PATH(m - k, D[k:n]) : MTH(D[0:k])`.
    pub(super) fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
        let n = d.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = k(n);
        let (mut p, sibling) = if m < k {
            (path(m, &d[..k]), mth(&d[k..]))
        } else {
            (path(m - k, &d[k..]), mth(&d[..k]))
        };
        p.push(sibling);
        p
    }

    /// How a proof for leaf `m` of a tree of `n` combines its hashes, from
    /// the leaf upwards: `true` where the path element is the left input.
    /// Two (index, size) pairs with the same shape accept the same proofs.
    pub(super) fn shape(m: usize, n: usize) -> Vec<bool> {
        if n <= 1 {
            return Vec::new();
        }
        let k = k(n);
        let mut s = if m < k { shape(m, k) } else { shape(m - k, n - k) };
        s.push(m >= k);
        s
    }

    /// `mth` with the subtree roots remembered: in the sweep over all tree
    /// sizes every subtree `D[lo:hi]` recurs many times, and the plain
    /// recursion would make the test crawl in debug builds.
    #[derive(Default)]
    pub(super) struct Memo {
        roots: HashMap<(usize, usize), Hash>,
    }

    impl Memo {
        pub(super) fn mth(&mut self, d: &[Hash], lo: usize, hi: usize) -> Hash {
            if let Some(h) = self.roots.get(&(lo, hi)) {
                return *h;
            }
            let h = match hi - lo {
                0 => Sha256::digest([]).into(),
                1 => d[lo],
                n => {
                    let k = k(n);
                    node(&self.mth(d, lo, lo + k), &self.mth(d, lo + k, hi))
                }
            };
            self.roots.insert((lo, hi), h);
            h
        }

        pub(super) fn path(&mut self, d: &[Hash], m: usize, lo: usize, hi: usize) -> Vec<Hash> {
            if hi - lo <= 1 {
                return Vec::new();
            }
            let k = k(hi - lo);
            let (mut p, sibling) = if m < k {
                (self.path(d, m, lo, lo + k), self.mth(d, lo + k, hi))
            } else {
                (self.path(d, m - k, lo + k, hi), self.mth(d, lo, lo + k))
            };
            p.push(sibling);
            p
        }
    }
}

/// `n` distinct leaf hashes.
fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| merkle::leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn rfc6962_reference_matches_memoized_reference() {
    // The memoized reference used below is the plain one.
    let d = leaves(40);
    let mut memo = reference::Memo::default();
    for n in 0..=d.len() {
        assert_eq!(memo.mth(&d, 0, n), reference::mth(&d[..n]), "n = {n}");
        for m in 0..n {
            assert_eq!(memo.path(&d, m, 0, n), reference::path(m, &d[..n]), "m = {m}, n = {n}");
        }
    }
}

const MAX_SWEEP: usize = 300;

#[test]
fn rfc6962_root_matches_reference_for_every_size_to_300() {
    let d = leaves(MAX_SWEEP);
    let mut memo = reference::Memo::default();
    for n in 0..=MAX_SWEEP {
        assert_eq!(merkle::root(&d[..n]), memo.mth(&d, 0, n), "tree size {n}");
    }
}

/// Checks every leaf of the tree of the first `n` of `d` against the
/// reference, and that the proof verifies and a wrong index, size or root
/// does not.
fn check_every_leaf(d: &[Hash], n: usize, memo: &mut reference::Memo) {
    let tree = &d[..n];
    let root = memo.mth(d, 0, n);
    let size = n as u64;
    assert_eq!(merkle::audit_path(n, tree), None, "index {n} of size {n}");
    for m in 0..n {
        let path = merkle::audit_path(m, tree).unwrap();
        assert_eq!(path, memo.path(d, m, 0, n), "leaf {m} of size {n}");
        assert_eq!(path.len(), reference::shape(m, n).len());
        let index = m as u64;
        merkle::verify_inclusion(index, size, &d[m], &path, &root).unwrap();

        // A neighbouring index, or its leaf at this index, fails.
        let other = if m + 1 < n { m + 1 } else { m.wrapping_sub(1) };
        if other < n {
            assert!(merkle::verify_inclusion(other as u64, size, &d[m], &path, &root).is_err());
            assert!(merkle::verify_inclusion(index, size, &d[other], &path, &root).is_err());
        }
        assert_eq!(
            merkle::verify_inclusion(index, index, &d[m], &path, &root),
            Err(ProofError::IndexOutOfRange { index, size: index })
        );
        // Doubling the size always changes the proof's shape.
        assert!(merkle::verify_inclusion(index, 2 * size, &d[m], &path, &root).is_err());
        let mut bad_root = root;
        bad_root[31] ^= 1;
        assert_eq!(
            merkle::verify_inclusion(index, size, &d[m], &path, &bad_root),
            Err(ProofError::RootMismatch)
        );
    }
}

#[test]
fn rfc6962_audit_path_matches_reference_for_every_leaf_to_300() {
    // About 9 million node hashes inside `audit_path` (each call recomputes
    // its sibling subtrees), so the sizes are shared among threads.
    let d = leaves(MAX_SWEEP);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for t in 0..threads {
            let d = &d;
            s.spawn(move || {
                let mut memo = reference::Memo::default();
                for n in (1..=MAX_SWEEP).filter(|n| n % threads == t) {
                    check_every_leaf(d, n, &mut memo);
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------
// (c) Properties: any single change to a proof is refused.

/// A tree of 1..=200 distinct random leaves and one of its leaves.
fn tree_and_leaf() -> impl Strategy<Value = (Vec<Hash>, usize)> {
    (1usize..=200, any::<[u8; 32]>()).prop_flat_map(|(n, seed)| {
        let d: Vec<Hash> = (0..n as u64)
            .map(|i| merkle::leaf_hash(&[&seed[..], &i.to_be_bytes()].concat()))
            .collect();
        (Just(d), 0..n)
    })
}

struct Proof {
    index: u64,
    size: u64,
    leaf: Hash,
    path: Vec<Hash>,
    root: Hash,
}

impl Proof {
    fn of(d: &[Hash], m: usize) -> Self {
        Self {
            index: m as u64,
            size: d.len() as u64,
            leaf: d[m],
            path: merkle::audit_path(m, d).unwrap(),
            root: merkle::root(d),
        }
    }

    fn verifies(&self) -> bool {
        merkle::verify_inclusion(self.index, self.size, &self.leaf, &self.path, &self.root).is_ok()
    }
}

fn flip(h: &mut Hash, bit: usize) {
    h[bit / 8] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rfc6962_proof_verifies((d, m) in tree_and_leaf()) {
        prop_assert!(Proof::of(&d, m).verifies());
    }

    #[test]
    fn rfc6962_flipped_leaf_bit_fails((d, m) in tree_and_leaf(), bit in 0usize..256) {
        let mut p = Proof::of(&d, m);
        flip(&mut p.leaf, bit);
        prop_assert!(!p.verifies());
    }

    #[test]
    fn rfc6962_flipped_path_bit_fails((d, m) in tree_and_leaf(), which in any::<prop::sample::Index>(), bit in 0usize..256) {
        let mut p = Proof::of(&d, m);
        prop_assume!(!p.path.is_empty());
        let i = which.index(p.path.len());
        flip(&mut p.path[i], bit);
        prop_assert!(!p.verifies());
    }

    #[test]
    fn rfc6962_flipped_root_bit_fails((d, m) in tree_and_leaf(), bit in 0usize..256) {
        let mut p = Proof::of(&d, m);
        flip(&mut p.root, bit);
        prop_assert_eq!(
            merkle::verify_inclusion(p.index, p.size, &p.leaf, &p.path, &p.root),
            Err(ProofError::RootMismatch)
        );
    }

    #[test]
    fn rfc6962_changed_index_fails((d, m) in tree_and_leaf(), k in 0u32..8, step in prop::bool::ANY) {
        let mut p = Proof::of(&d, m);
        let n = d.len() as u64;
        // Every other index of the tree, as a bit flip and as a neighbour.
        let flipped = p.index ^ (1 << k);
        let neighbour = if step { p.index.checked_add(1) } else { p.index.checked_sub(1) };
        for other in [Some(flipped), neighbour].into_iter().flatten() {
            p.index = other;
            prop_assert!(!p.verifies(), "index {} -> {} in size {}", m, other, n);
            if other >= n {
                prop_assert_eq!(
                    merkle::verify_inclusion(other, n, &p.leaf, &p.path, &p.root),
                    Err(ProofError::IndexOutOfRange { index: other, size: n })
                );
            }
        }
    }

    /// RFC 6962 proofs do not carry the tree size: a proof also verifies
    /// for another size exactly when the leaf's path has the same shape
    /// there (for example leaf 0 of 5 and of 6 leaves). The protocol binds
    /// the size through the signed block header's `message_count`; here we
    /// check that the verifier accepts no other size.
    #[test]
    fn rfc6962_changed_size_fails_unless_same_shape((d, m) in tree_and_leaf(), k in 0u32..9, delta in prop::sample::select(vec![-1i64, 1, 2])) {
        let p = Proof::of(&d, m);
        let n = p.size;
        let sizes = [n ^ (1 << k), n.saturating_add_signed(delta), n * 2, n / 2];
        for size in sizes {
            if size == n {
                continue;
            }
            let ok = merkle::verify_inclusion(p.index, size, &p.leaf, &p.path, &p.root).is_ok();
            let same_shape = size > p.index && reference::shape(m, size as usize) == reference::shape(m, n as usize);
            prop_assert_eq!(ok, same_shape, "leaf {} size {} -> {}", m, n, size);
        }
    }

    #[test]
    fn rfc6962_dropped_path_element_fails((d, m) in tree_and_leaf(), which in any::<prop::sample::Index>()) {
        let mut p = Proof::of(&d, m);
        prop_assume!(!p.path.is_empty());
        p.path.remove(which.index(p.path.len()));
        prop_assert_eq!(
            merkle::verify_inclusion(p.index, p.size, &p.leaf, &p.path, &p.root),
            Err(ProofError::WrongPathLength)
        );
    }

    #[test]
    fn rfc6962_added_path_element_fails((d, m) in tree_and_leaf(), which in any::<prop::sample::Index>(), extra in any::<[u8; 32]>()) {
        let p = Proof::of(&d, m);
        let at = which.index(p.path.len() + 1);
        // A random hash, and copies of the root and the leaf, the least
        // random extras an attacker could try.
        for element in [extra, p.root, p.leaf] {
            let mut path = p.path.clone();
            path.insert(at, element);
            prop_assert_eq!(
                merkle::verify_inclusion(p.index, p.size, &p.leaf, &path, &p.root),
                Err(ProofError::WrongPathLength)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// (d) transparency-dev/merkle inclusion-proof conformance cases.

const VECTORS_ENV: &str = "SEALCHAIN_RFC6962_VECTORS";

/// One case in transparency-dev's `testdata/inclusion` JSON format.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    /// Base64.
    root: String,
    /// Base64.
    leaf_hash: String,
    /// Base64 hashes; `null` for an empty proof.
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

/// A base64 field as a hash; anything that is not 32 bytes is `None`.
fn hash32(b64: &str) -> Option<Hash> {
    STANDARD.decode(b64).ok()?.try_into().ok()
}

impl InclusionCase {
    /// Whether our verifier accepts the case. A root, leaf hash or proof
    /// element that is not a 32-byte hash can never verify.
    fn verifies(&self) -> bool {
        let (Some(root), Some(leaf)) = (hash32(&self.root), hash32(&self.leaf_hash)) else {
            return false;
        };
        let Some(path) = self
            .proof
            .iter()
            .flatten()
            .map(|p| hash32(p))
            .collect::<Option<Vec<Hash>>>()
        else {
            return false;
        };
        merkle::verify_inclusion(self.leaf_idx, self.tree_size, &leaf, &path, &root).is_ok()
    }
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn rfc6962_inclusion_vectors() {
    // The vectors ship beside the repository (../shared/vectors/rfc6962);
    // the variable points elsewhere. Never skipped: without vectors the
    // test fails and says how to provide them.
    let root = match std::env::var_os(VECTORS_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/rfc6962"),
    };
    assert!(
        root.join("inclusion").is_dir(),
        "no RFC 6962 vectors at {}: keep the project's shared/vectors beside the repository, or set \
         {VECTORS_ENV} to a directory holding transparency-dev/merkle's testdata (with an inclusion/ subdirectory)",
        root.display()
    );
    assert!(root.is_dir(), "{VECTORS_ENV}={} is not a directory", root.display());
    let dir = root.join("inclusion");
    assert!(
        dir.is_dir(),
        "{VECTORS_ENV}: {} is not a directory (expected transparency-dev/merkle's testdata layout)",
        dir.display()
    );
    let mut files = Vec::new();
    json_files(&dir, &mut files);

    let (mut positive, mut negative) = (0usize, 0usize);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let case: InclusionCase =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not an inclusion case: {e}", file.display()));
        let verifies = case.verifies();
        assert_eq!(
            verifies,
            !case.want_err,
            "{} ({}): leafIdx {} treeSize {} {}",
            file.display(),
            case.desc,
            case.leaf_idx,
            case.tree_size,
            if case.want_err {
                "verified but must fail"
            } else {
                "failed but must verify"
            }
        );
        if case.want_err {
            negative += 1;
        } else {
            positive += 1;
        }
    }
    eprintln!(
        "rfc6962_inclusion_vectors: {positive} positive and {negative} negative cases from {}",
        dir.display()
    );
    assert!(positive >= 1, "no positive case under {}", dir.display());
    assert!(negative >= 1, "no negative case under {}", dir.display());
}
