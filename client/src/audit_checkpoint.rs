//! The audit checkpoint: the last block `verify` accepted.
//!
//! (Not to be confused with the log's checkpoints, the signed tree heads of
//! PROTOCOL §9: what this client remembers of those is in
//! [`crate::log_memory`].)
//!
//! A node that rewrites or truncates its chain after an audit produces a
//! chain that is valid on its own; only a memory of what was seen before
//! shows the change. After a successful audit `verify` records the last
//! verified block (index and hash, under the node's signing key); the next
//! audit refuses a chain that no longer reaches that block or holds another
//! block there. It also keeps a digest of every audited (sender, nonce)
//! pair, so an audit that starts later (`--from`) still catches a replay of
//! a message audited before: in a sorted binary pair file next to the
//! checkpoint ([`crate::pair_sort`]), named after and checked against the
//! SHA-256 the checkpoint records, so a truncated or swapped file is
//! refused. (Older checkpoints kept the pairs inline, base64 in `pairs`;
//! they still load, and the next audit moves them to a pair file.)

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sealchain_shared::api::Hex32;
use sealchain_shared::audit::PairDigest;
use sealchain_shared::tlog::CompactRange;

use crate::pair_sort::Remembered;
use serde::{Deserialize, Serialize};

/// The audit checkpoint file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditCheckpoint {
    /// The node signing key the chain was verified against.
    pub signing_key: Hex32,
    /// Index of the last verified block.
    pub index: u64,
    /// Its hash.
    pub hash: Hex32,
    /// When it was verified, Unix ms (informational).
    pub verified_at: i64,
    /// Written by older versions: the (sender, nonce) pairs of every
    /// audited message, base64 of 24-byte records, a 16-byte pair digest
    /// and the message's seq (u64, big-endian). Read, never written: see
    /// [`AuditCheckpoint::pair_file`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<String>,
    /// The pair file holding the (sender, nonce) pairs of every audited
    /// message, so that a later audit that starts after them still catches
    /// a replay of one (24 bytes of file per audited message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_file: Option<PairFileRef>,
    /// The log's compact range over every message of blocks 0..=index
    /// (at most 64 hashes, largest subtree first), so that an audit that
    /// starts at the next block still compares the blocks with the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_range: Option<Vec<Hex32>>,
}

/// What the checkpoint records of its pair file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairFileRef {
    /// Pairs it holds.
    pub records: u64,
    /// SHA-256 of the whole file; its first 8 bytes, hex, name it.
    pub sha256: Hex32,
}

/// Bytes of one remembered pair: digest and seq.
const PAIR_RECORD: usize = 16 + 8;

/// Encodes remembered pairs as older versions did for
/// [`AuditCheckpoint::pairs`] (tests write such files).
pub fn encode_pairs(pairs: &[(PairDigest, u64)]) -> String {
    let mut raw = Vec::with_capacity(pairs.len() * PAIR_RECORD);
    for (digest, seq) in pairs {
        raw.extend_from_slice(digest);
        raw.extend_from_slice(&seq.to_be_bytes());
    }
    STANDARD.encode(raw)
}

/// The pair file with SHA-256 `sha256` of the checkpoint `file`: next to it,
/// `<file name>.<first 8 bytes of the hash, hex>.pairs`. Named by content,
/// a new pair file never replaces the one the current checkpoint names,
/// so a crash between writing it and the checkpoint leaves both intact.
pub fn pair_file_path(file: &Path, sha256: &[u8; 32]) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.pairs", hex::encode(&sha256[..8])));
    file.with_file_name(name)
}

impl AuditCheckpoint {
    /// Reads a checkpoint; `None` if the file does not exist.
    pub fn load(file: &Path) -> anyhow::Result<Option<Self>> {
        crate::files::read_if_exists(file)?
            .map(|bytes| {
                serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "{} is not a sealchain audit checkpoint (delete it to start over)",
                        file.display()
                    )
                })
            })
            .transpose()
    }

    /// Replaces the checkpoint atomically (write a sibling, then rename).
    pub fn save(&self, file: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        crate::files::replace(file, text.as_bytes())
    }

    /// The log's compact range after block `index` (see
    /// [`AuditCheckpoint::log_range`]), if recorded.
    pub fn compact_range(&self, block_size: u32) -> anyhow::Result<Option<CompactRange>> {
        let Some(hashes) = &self.log_range else {
            return Ok(None);
        };
        let size = (self.index + 1) * u64::from(block_size);
        CompactRange::from_parts(size, hashes.iter().map(|h| h.0).collect())
            .map(Some)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the audit checkpoint's log_range does not fit {size} messages (delete the file to start over)"
                )
            })
    }

    /// Checks that a chain of `count` blocks signed by `signing_key` still
    /// reaches this checkpoint.
    pub fn check_reach(&self, signing_key: &Hex32, count: u64) -> anyhow::Result<()> {
        if self.signing_key != *signing_key {
            bail!(
                "the checkpoint records an audit of the chain signed by {}, but this node signs with {}; \
                 use another --checkpoint file for another chain",
                self.signing_key,
                signing_key
            );
        }
        if count <= self.index {
            bail!(
                "the chain was truncated: an earlier audit verified block {} ({}), but the node now \
                 reports {count} sealed blocks",
                self.index,
                self.hash
            );
        }
        Ok(())
    }

    /// The remembered pairs of the checkpoint `file`: its pair file (size
    /// and SHA-256 checked), or the inline pairs of an older version, or
    /// none (a checkpoint written before pairs were kept).
    pub fn remembered(&self, file: &Path) -> anyhow::Result<Remembered> {
        if let Some(pf) = &self.pair_file {
            return Remembered::open(&pair_file_path(file, &pf.sha256.0), pf.records, &pf.sha256.0);
        }
        Ok(match self.pairs {
            Some(_) => Remembered::from_unsorted(self.decode_pairs()?),
            None => Remembered::None,
        })
    }

    /// The inline pairs of an older version (none if absent).
    pub fn decode_pairs(&self) -> anyhow::Result<Vec<(PairDigest, u64)>> {
        let Some(text) = &self.pairs else {
            return Ok(Vec::new());
        };
        let raw = STANDARD
            .decode(text)
            .context("the checkpoint's pairs are not base64 (delete the file to start over)")?;
        if raw.len() % PAIR_RECORD != 0 {
            bail!("the checkpoint's pairs are truncated (delete the file to start over)");
        }
        Ok(raw
            .chunks(PAIR_RECORD)
            .map(|r| {
                let mut digest = [0; 16];
                digest.copy_from_slice(&r[..16]);
                let mut seq = [0; 8];
                seq.copy_from_slice(&r[16..]);
                (digest, u64::from_be_bytes(seq))
            })
            .collect())
    }

    /// Checks the block at the checkpoint's index.
    pub fn check_block(&self, index: u64, hash: &Hex32) -> anyhow::Result<()> {
        if index == self.index && *hash != self.hash {
            bail!(
                "the chain was rewritten: block {index} had hash {} at an earlier audit, now {hash}",
                self.hash
            );
        }
        Ok(())
    }
}
