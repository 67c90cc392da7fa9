//! The log of PROTOCOL §9: the RFC 6962 tree over every message in `seq`
//! order, kept as a compact range, served as tiles (C2SP `tlog-tiles`), and
//! proven with inclusion and consistency proofs.
//!
//! Proofs are computed from a [`HashSource`]: anything that can give the
//! hash of a complete subtree (a tile store, or leaves in memory). Any
//! subtree hash the RFC 6962 algorithms need decomposes into such complete
//! subtrees, so a node that stores its tiles never hashes leaves again.

use crate::Hash;
use crate::merkle::{empty_root, node_hash};

/// Height of a tile (tlog-tiles): 8 levels, 256 hashes.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Largest tile level.
pub const MAX_TILE_LEVEL: u8 = 63;

/// The right edge of a tree of `size` leaves: the hashes of the complete
/// subtrees that make it up, largest (leftmost) first. At most 64 hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

/// A complete subtree: `height` levels above the leaves, covering leaves
/// `index * 2^height .. (index + 1) * 2^height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subtree {
    /// Levels above the leaves (0 = a leaf).
    pub height: u32,
    /// Position among the subtrees of that height.
    pub index: u64,
    /// Its Merkle tree hash.
    pub hash: Hash,
}

impl CompactRange {
    /// The range of an empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from its stored parts; `None` if the number of
    /// hashes does not match `size` (one per set bit).
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { size, hashes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes, largest subtree first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf hash and calls `completed` for every subtree this
    /// completes, the leaf itself first, then each larger one.
    pub fn append(&mut self, leaf: Hash, mut completed: impl FnMut(Subtree)) {
        let index = self.size;
        completed(Subtree {
            height: 0,
            index,
            hash: leaf,
        });
        let mut hash = leaf;
        let mut height = 0;
        // Each trailing one bit of the old size is a subtree of equal
        // height to merge with.
        while (index >> height) & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            hash = node_hash(&left, &hash);
            height += 1;
            completed(Subtree {
                height,
                index: index >> height,
                hash,
            });
        }
        self.hashes.push(hash);
        self.size += 1;
    }

    /// The RFC 6962 root hash of the tree (the hash of the empty string
    /// for an empty tree).
    pub fn root(&self) -> Hash {
        let mut hashes = self.hashes.iter().rev();
        let Some(last) = hashes.next() else {
            return empty_root();
        };
        hashes.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// Gives the hash of complete subtrees of a tree.
pub trait HashSource {
    /// The error of a failed lookup.
    type Error;
    /// The hashes of the complete subtrees of `height` with indexes
    /// `start .. start + count`, in order.
    fn subtrees(&mut self, height: u32, start: u64, count: u64) -> Result<Vec<Hash>, Self::Error>;
}

/// Leaves in memory as a [`HashSource`] (tests, small trees).
impl HashSource for &[Hash] {
    type Error = std::convert::Infallible;
    fn subtrees(&mut self, height: u32, start: u64, count: u64) -> Result<Vec<Hash>, Self::Error> {
        Ok((start..start + count)
            .map(|i| {
                let lo = (i << height) as usize;
                let hi = ((i + 1) << height) as usize;
                crate::merkle::root(&self[lo..hi])
            })
            .collect())
    }
}

/// Why a proof cannot be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    /// The sizes or index asked for do not fit.
    #[error("{0}")]
    Range(String),
    /// The proof does not verify.
    #[error("{0}")]
    Invalid(String),
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[lo:hi])` for a range produced by RFC 6962's recursive split: `lo`
/// is a multiple of the largest power of two not above `hi - lo`.
pub fn range_hash<S: HashSource>(source: &mut S, lo: u64, hi: u64) -> Result<Hash, S::Error> {
    let n = hi - lo;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let height = n.trailing_zeros();
        // A complete subtree: read it from the stored level at or below.
        let stored = height - height % TILE_HEIGHT;
        let parts = source.subtrees(stored, lo >> stored, 1 << (height - stored))?;
        return Ok(crate::merkle::root(&parts));
    }
    let k = split(n);
    let left = range_hash(source, lo, lo + k)?;
    let right = range_hash(source, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// The RFC 6962 inclusion proof of leaf `index` in the tree of `size`
/// leaves, from the leaf upwards.
pub fn inclusion_proof<S: HashSource>(
    source: &mut S,
    index: u64,
    size: u64,
) -> Result<Result<Vec<Hash>, TlogError>, S::Error> {
    if index >= size {
        return Ok(Err(TlogError::Range(format!(
            "leaf {index} is not in a tree of size {size}"
        ))));
    }
    let mut proof = Vec::new();
    let (mut lo, mut hi, mut m) = (0, size, index);
    // Collected top-down, returned leaf-up.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if m < k {
            proof.push(range_hash(source, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(source, lo, lo + k)?);
            lo += k;
            m -= k;
        }
    }
    proof.reverse();
    Ok(Ok(proof))
}

/// The RFC 6962 consistency proof between tree sizes `old` and `new`.
pub fn consistency_proof<S: HashSource>(
    source: &mut S,
    old: u64,
    new: u64,
) -> Result<Result<Vec<Hash>, TlogError>, S::Error> {
    if old > new {
        return Ok(Err(TlogError::Range(format!("size {old} is larger than size {new}"))));
    }
    if old == 0 {
        return Ok(Err(TlogError::Range(
            "a consistency proof from the empty tree proves nothing".into(),
        )));
    }
    if old == new {
        return Ok(Ok(Vec::new()));
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled top-down and reversed at the end.
    let mut proof = Vec::new();
    let (mut lo, mut hi, mut m, mut whole) = (0, new, old, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                proof.push(range_hash(source, lo, hi)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            proof.push(range_hash(source, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(source, lo, lo + k)?);
            lo += k;
            m -= k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(Ok(proof))
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), TlogError> {
    let invalid = |why: &str| Err(TlogError::Invalid(format!("consistency {old} → {new}: {why}")));
    if old > new {
        return Err(TlogError::Range(format!("size {old} is larger than size {new}")));
    }
    if old == 0 {
        // Every tree extends the empty tree: such a "proof" proves nothing,
        // and a verifier that accepted one would accept anything.
        return Err(TlogError::Range(
            "a consistency proof from the empty tree proves nothing".into(),
        ));
    }
    if old == new {
        if !proof.is_empty() {
            return invalid("a proof between equal sizes must be empty");
        }
        return if old_root == new_root {
            Ok(())
        } else {
            invalid("different roots for one size")
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return invalid("the proof is empty");
    };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return invalid("the proof is too long");
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return invalid("the proof is too short");
    }
    if fr != *old_root {
        return invalid("it does not lead to the old root");
    }
    if sr != *new_root {
        return invalid("it does not lead to the new root");
    }
    Ok(())
}

/// A tile's coordinates (tlog-tiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileId {
    /// `None` for an entry bundle, else the tile level.
    pub level: Option<u8>,
    /// The tile index within its level.
    pub index: u64,
    /// `Some(w)` for a partial tile of width w (1–255).
    pub width: Option<u8>,
}

impl TileId {
    /// The path after the log's prefix, e.g. `tile/1/x001/x234/067.p/5`.
    pub fn path(&self) -> String {
        let level = match self.level {
            Some(l) => l.to_string(),
            None => "entries".to_owned(),
        };
        let mut s = format!("tile/{level}/{}", encode_index(self.index));
        if let Some(w) = self.width {
            s.push_str(&format!(".p/{w}"));
        }
        s
    }

    /// Parses the part of a tile path after `tile/`.
    pub fn parse(rest: &str) -> Option<Self> {
        let (level_str, rest) = rest.split_once('/')?;
        let level = if level_str == "entries" {
            None
        } else {
            Some(parse_decimal(level_str).filter(|l| *l <= u64::from(MAX_TILE_LEVEL))? as u8)
        };
        let (index_path, width) = match rest.split_once(".p/") {
            Some((index_path, w)) => (
                index_path,
                Some(parse_decimal(w).filter(|w| (1..=255).contains(w))? as u8),
            ),
            None => (rest, None),
        };
        let segments: Vec<&str> = index_path.split('/').collect();
        let (last, upper) = segments.split_last()?;
        let mut index: u64 = 0;
        for seg in upper {
            index = index
                .checked_mul(1000)?
                .checked_add(three_digits(seg.strip_prefix('x')?)?)?;
        }
        index = index.checked_mul(1000)?.checked_add(three_digits(last)?)?;
        let id = Self { level, index, width };
        // One spelling per index: no superfluous leading x000 segments.
        (id.path() == format!("tile/{level_str}/{rest}")).then_some(id)
    }
}

/// `1234067` → `x001/x234/067`.
pub fn encode_index(mut n: u64) -> String {
    let mut parts = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        parts.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    parts.reverse();
    parts.join("/")
}

fn three_digits(s: &str) -> Option<u64> {
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn parse_decimal(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok())?
}

/// The width a tile at `level` (`None`: entries, as level 0) and `index`
/// has in a tree of `size` leaves: 256 when full, 1–255 when partial, 0
/// when it does not exist yet.
pub fn tile_width(level: Option<u8>, index: u64, size: u64) -> u64 {
    let level = u32::from(level.unwrap_or(0));
    let shift = TILE_HEIGHT * level;
    if shift >= 64 {
        return 0;
    }
    let hashes = size >> shift;
    hashes.saturating_sub(index.saturating_mul(TILE_WIDTH)).min(TILE_WIDTH)
}

/// Splits an entry bundle (tlog-tiles: each entry with a big-endian
/// `u16` length) into its entries. `width` is how many the bundle must
/// hold (256 for a full bundle, W for `.p/W`); a bundle with fewer or more
/// entries, a length running past the end, or bytes after the last entry
/// is refused.
pub fn split_entry_bundle(bundle: &[u8], width: u64) -> Result<Vec<&[u8]>, TlogError> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let bad = |why: String| TlogError::Invalid(format!("entry bundle: entry {}: {why}", entries.len()));
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| bad("a lone byte where a 2-byte length was expected".into()))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(bad(format!("its length {len} runs past the end of the bundle")));
        }
        let (entry, after) = tail.split_at(len);
        entries.push(entry);
        rest = after;
    }
    if entries.len() as u64 != width {
        return Err(TlogError::Invalid(format!(
            "entry bundle: {} entries where the tile's width is {width}",
            entries.len()
        )));
    }
    Ok(entries)
}

/// Appends one entry to an entry bundle (a `u16be` length, then the
/// entry); `None` if the entry is longer than 65,535 bytes.
pub fn push_entry(bundle: &mut Vec<u8>, parts: &[&[u8]]) -> Option<()> {
    let len = u16::try_from(parts.iter().map(|p| p.len()).sum::<usize>()).ok()?;
    bundle.extend_from_slice(&len.to_be_bytes());
    parts.iter().for_each(|p| bundle.extend_from_slice(p));
    Some(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::merkle::{leaf_hash, root};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn compact_range_root_matches_the_tree_at_every_size() {
        let all = leaves(600);
        let mut range = CompactRange::new();
        assert_eq!(range.root(), root(&[]));
        let mut completed = Vec::new();
        for (i, leaf) in all.iter().enumerate() {
            range.append(*leaf, |s| completed.push(s));
            assert_eq!(range.root(), root(&all[..=i]), "size {}", i + 1);
            assert_eq!(range.hashes().len(), (i as u64 + 1).count_ones() as usize);
        }
        // Every reported subtree is the real one, and each is reported once.
        let tiles: Vec<_> = completed.iter().filter(|s| s.height == 8).collect();
        assert_eq!(tiles.len(), 2);
        for s in &completed {
            let lo = (s.index << s.height) as usize;
            let hi = ((s.index + 1) << s.height) as usize;
            assert_eq!(s.hash, root(&all[lo..hi]));
        }
        assert_eq!(completed.len(), 600 + 300 + 150 + 75 + 37 + 18 + 9 + 4 + 2 + 1);
        let back = CompactRange::from_parts(range.size(), range.hashes().to_vec()).unwrap();
        assert_eq!(back, range);
        assert!(CompactRange::from_parts(601, range.hashes().to_vec()).is_none());
    }

    #[test]
    fn proofs_verify_for_every_pair_of_small_sizes() {
        let all = leaves(70);
        for new in 1..=70u64 {
            let mut source: &[Hash] = &all[..new as usize];
            let new_root = root(&all[..new as usize]);
            for index in 0..new {
                let proof = inclusion_proof(&mut source, index, new).unwrap().unwrap();
                crate::merkle::verify_inclusion(index, new, &all[index as usize], &proof, &new_root).unwrap();
            }
            for old in 1..=new {
                let old_root = root(&all[..old as usize]);
                let proof = consistency_proof(&mut source, old, new).unwrap().unwrap();
                verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();
                if old > 0 && old < new {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
                    assert!(verify_consistency(old, new, &new_root, &new_root, &proof).is_err());
                }
            }
        }
        let mut source: &[Hash] = &all;
        assert!(inclusion_proof(&mut source, 70, 70).unwrap().is_err());
        assert!(consistency_proof(&mut source, 71, 70).unwrap().is_err());
        assert!(consistency_proof(&mut source, 0, 70).unwrap().is_err());
        assert!(verify_consistency(0, 70, &root(&[]), &root(&all), &[]).is_err());
    }

    #[test]
    fn entry_bundles_split_into_exactly_their_width() {
        let mut bundle = Vec::new();
        push_entry(&mut bundle, &[b"ab", b"c"]).unwrap();
        push_entry(&mut bundle, &[b""]).unwrap();
        push_entry(&mut bundle, &[&[7; 300]]).unwrap();
        assert_eq!(&bundle[..5], &[0, 3, b'a', b'b', b'c']);
        let entries = split_entry_bundle(&bundle, 3).unwrap();
        assert_eq!(entries, vec![&b"abc"[..], &b""[..], &[7; 300][..]]);
        assert!(split_entry_bundle(&bundle, 2).is_err(), "more than its width");
        assert!(split_entry_bundle(&bundle, 4).is_err(), "fewer than its width");
        assert!(split_entry_bundle(&bundle[..bundle.len() - 1], 3).is_err(), "truncated");
        let mut trailing = bundle.clone();
        trailing.push(0);
        assert!(
            split_entry_bundle(&trailing, 3).is_err(),
            "a lone byte after the last entry"
        );
        assert_eq!(split_entry_bundle(&[], 0).unwrap(), Vec::<&[u8]>::new());
        assert!(push_entry(&mut Vec::new(), &[&[0; 65_536]]).is_none());
        push_entry(&mut Vec::new(), &[&[0; 65_535]]).unwrap();
    }

    #[test]
    fn tile_paths_follow_tlog_tiles() {
        let id = TileId {
            level: Some(1),
            index: 1_234_067,
            width: None,
        };
        assert_eq!(id.path(), "tile/1/x001/x234/067");
        assert_eq!(TileId::parse("1/x001/x234/067"), Some(id));
        let partial = TileId {
            level: None,
            index: 5,
            width: Some(17),
        };
        assert_eq!(partial.path(), "tile/entries/005.p/17");
        assert_eq!(TileId::parse("entries/005.p/17"), Some(partial));
        for bad in [
            "1/1234067",
            "01/005",
            "64/005",
            "0/x000/005",
            "0/005.p/0",
            "0/005.p/256",
            "0/005.p/017",
            "0/5",
            "0/x5/005",
            "0/005/",
            "x/005",
            "0/005.p/",
            "0/005.p",
        ] {
            assert_eq!(TileId::parse(bad), None, "{bad}");
        }
        // The spec's example: size 70,000.
        assert_eq!(tile_width(Some(0), 272, 70_000), 256);
        assert_eq!(tile_width(Some(0), 273, 70_000), 112);
        assert_eq!(tile_width(Some(0), 274, 70_000), 0);
        assert_eq!(tile_width(Some(1), 0, 70_000), 256);
        assert_eq!(tile_width(Some(1), 1, 70_000), 17);
        assert_eq!(tile_width(Some(2), 0, 70_000), 1);
        assert_eq!(tile_width(Some(1), 0, 256), 1);
        assert_eq!(tile_width(Some(7), 0, u64::MAX), 255);
        assert_eq!(tile_width(Some(8), 0, u64::MAX), 0);
    }
}
