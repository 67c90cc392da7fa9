//! What this client remembers of a node's log (PROTOCOL §9), so that a
//! node cannot show it one history today and another tomorrow.
//!
//! One directory per log, named by the node's signing key (like the audit
//! checkpoint of [`crate::audit_checkpoint`], which is something else: the
//! last *block* `verify` accepted):
//!
//! ```text
//! DATA_DIR/tlog/<signing key>/checkpoint    the newest log checkpoint this client verified, verbatim (a signed note)
//! DATA_DIR/tlog/<signing key>/entries.json  how far `monitor --entries` checked the entries: {"size": N, "compact_range": [hex, …]}
//! DATA_DIR/tlog/<signing key>/lock          held while the checkpoint file is replaced
//! ```
//!
//! Every command that verifies a checkpoint (`checkpoint`, `monitor`,
//! `proof --out`, `send`/`simulate --wait-inclusion`, `verify`) checks it
//! is consistent with the remembered one and remembers it if it is newer.
//! Several processes may share a data directory: the checkpoint is replaced
//! only under the lock and only if it is still the one the process checked
//! against ([`LogMemory::record`]).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sealchain_shared::api::Hex32;
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::note::NoteVerifier;
use sealchain_shared::tlog::CompactRange;
use serde::{Deserialize, Serialize};

use crate::files;
use crate::trusted_log::{VerifiedCheckpoint, accept_checkpoint};

/// The directory of one log's memory.
#[derive(Debug, Clone)]
pub struct LogMemory {
    dir: PathBuf,
}

/// What [`LogMemory::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The new checkpoint is now the remembered one.
    Saved,
    /// The remembered checkpoint is as large or larger; it stays.
    Kept,
    /// Another process remembered another checkpoint meanwhile: check
    /// against that one and try again.
    Changed,
}

/// `entries.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesFile {
    size: u64,
    compact_range: Vec<Hex32>,
}

impl LogMemory {
    /// The memory kept in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The remembered checkpoint's file.
    pub fn checkpoint_file(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    /// The entries progress file.
    pub fn entries_file(&self) -> PathBuf {
        self.dir.join("entries.json")
    }

    /// The remembered checkpoint, verified again under `log`; `None` if
    /// there is none yet.
    pub fn load_checkpoint(&self, log: &NoteVerifier) -> anyhow::Result<Option<VerifiedCheckpoint>> {
        let file = self.checkpoint_file();
        read_checkpoint(&file, log)
    }

    /// Remembers `new` if it is larger than `expected`, the checkpoint the
    /// caller loaded and proved `new` consistent with (`None`: there was
    /// none) — provided the file still holds `expected`.
    pub fn record(&self, expected: Option<&VerifiedCheckpoint>, new: &VerifiedCheckpoint) -> anyhow::Result<Recorded> {
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let lock_file = self.dir.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_file)
            .with_context(|| format!("opening {}", lock_file.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_file.display()))?;
        let file = self.checkpoint_file();
        let current = files::read_if_exists(&file)?;
        if current.as_deref() != expected.map(|e| e.note.as_bytes()) {
            return Ok(Recorded::Changed);
        }
        if expected.is_some_and(|e| e.checkpoint.size >= new.checkpoint.size) {
            return Ok(Recorded::Kept);
        }
        // Still under the lock, released when `lock` is dropped.
        files::replace(&file, new.note.as_bytes())?;
        Ok(Recorded::Saved)
    }

    /// How far the entries were checked: the compact range over them.
    pub fn load_entries(&self) -> anyhow::Result<Option<CompactRange>> {
        let file = self.entries_file();
        let Some(bytes) = files::read_if_exists(&file)? else {
            return Ok(None);
        };
        let bad = || {
            format!(
                "{} is not a sealchain entries file (delete it to check all entries again)",
                file.display()
            )
        };
        let parsed: EntriesFile = serde_json::from_slice(&bytes).with_context(bad)?;
        CompactRange::from_parts(parsed.size, parsed.compact_range.into_iter().map(|h| h.0).collect())
            .map(Some)
            .with_context(bad)
    }

    /// Records how far the entries were checked.
    pub fn save_entries(&self, range: &CompactRange) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(&EntriesFile {
            size: range.size(),
            compact_range: range.hashes().iter().copied().map(HexBytes).collect(),
        })?;
        text.push('\n');
        files::replace(&self.entries_file(), text.as_bytes())
    }
}

fn read_checkpoint(file: &Path, log: &NoteVerifier) -> anyhow::Result<Option<VerifiedCheckpoint>> {
    let Some(bytes) = files::read_if_exists(file)? else {
        return Ok(None);
    };
    accept_checkpoint(&bytes, log).map(Some).with_context(|| {
        format!(
            "the remembered checkpoint {} does not verify under {} (delete it to start over)",
            file.display(),
            log.to_vkey()
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sealchain_shared::SigningKey;
    use sealchain_shared::note::Checkpoint;

    use super::*;

    fn checkpoint(key: &SigningKey, size: u64) -> VerifiedCheckpoint {
        let cp = Checkpoint {
            origin: "log.example/x".into(),
            size,
            root: [size as u8; 32],
            extensions: vec![],
        };
        VerifiedCheckpoint {
            note: cp.sign(key).unwrap().to_text(),
            checkpoint: cp,
        }
    }

    #[test]
    fn only_a_larger_checkpoint_replaces_the_one_checked_against() {
        let dir = tempfile::tempdir().unwrap();
        let memory = LogMemory::new(dir.path().join("tlog/k"));
        let key = SigningKey::from_bytes(&[1; 32]);
        let log = NoteVerifier::new("log.example/x", key.verifying_key()).unwrap();
        assert!(memory.load_checkpoint(&log).unwrap().is_none());
        let (five, seven, six) = (checkpoint(&key, 5), checkpoint(&key, 7), checkpoint(&key, 6));
        assert_eq!(memory.record(None, &five).unwrap(), Recorded::Saved);
        assert_eq!(memory.load_checkpoint(&log).unwrap().unwrap().note, five.note);
        // Checked against nothing, but five is remembered: check again.
        assert_eq!(memory.record(None, &seven).unwrap(), Recorded::Changed);
        assert_eq!(memory.record(Some(&five), &seven).unwrap(), Recorded::Saved);
        // Another process still holding five: it must check against seven.
        assert_eq!(memory.record(Some(&five), &six).unwrap(), Recorded::Changed);
        assert_eq!(memory.record(Some(&seven), &six).unwrap(), Recorded::Kept);
        assert_eq!(memory.load_checkpoint(&log).unwrap().unwrap().checkpoint.size, 7);
        // A file that no longer verifies is an error naming it.
        let other = NoteVerifier::new("log.example/x", SigningKey::from_bytes(&[2; 32]).verifying_key()).unwrap();
        let err = format!("{:#}", memory.load_checkpoint(&other).unwrap_err());
        assert!(err.contains("delete it to start over"), "{err}");
    }

    #[test]
    fn entries_progress_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let memory = LogMemory::new(dir.path().to_owned());
        assert!(memory.load_entries().unwrap().is_none());
        let mut range = CompactRange::new();
        for i in 0..300u32 {
            range.append(sealchain_shared::merkle::leaf_hash(&i.to_be_bytes()), |_| {});
        }
        memory.save_entries(&range).unwrap();
        assert_eq!(memory.load_entries().unwrap().unwrap(), range);
        fs::write(memory.entries_file(), r#"{"size": 3, "compact_range": []}"#).unwrap();
        assert!(memory.load_entries().is_err());
    }
}
