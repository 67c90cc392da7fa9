//! Receipt files: one receipt JSON object per line, appended as receipts
//! arrive, read back by `verify --receipts`.
//!
//! A line is the node's receipt (`seq`, `leaf_hash`, `block_index`,
//! `received_at`, `signature`). With `--wait-inclusion` it also carries
//! `tlog_proof`: the message's C2SP tlog-proof bundle as text (the signed
//! message in its `extra` line, the inclusion proof, the checkpoint it
//! leads to), which `sealchain proof --verify` checks offline.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sealchain_shared::api::Receipt;
use serde::{Deserialize, Serialize};

/// One line of a receipts file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptLine {
    /// The node's receipt.
    #[serde(flatten)]
    pub receipt: Receipt,
    /// The message's tlog-proof bundle (`--wait-inclusion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlog_proof: Option<String>,
}

impl From<Receipt> for ReceiptLine {
    fn from(receipt: Receipt) -> Self {
        Self {
            receipt,
            tlog_proof: None,
        }
    }
}

/// An open receipt file, appending.
#[derive(Debug)]
pub struct ReceiptLog {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
}

impl ReceiptLog {
    /// Opens `path` for appending, creating it if missing.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening receipts file {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            out: BufWriter::new(file),
            written: 0,
        })
    }

    /// Appends one receipt as one line.
    pub fn append(&mut self, receipt: &ReceiptLine) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(receipt)?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .with_context(|| format!("writing receipts file {}", self.path.display()))?;
        self.written += 1;
        Ok(())
    }

    /// Flushes what was appended.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing receipts file {}", self.path.display()))
    }

    /// Receipts appended through this handle.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every receipt of a receipts file (blank lines are skipped).
pub fn read(path: &Path) -> anyhow::Result<Vec<ReceiptLine>> {
    let file = File::open(path).with_context(|| format!("opening receipts file {}", path.display()))?;
    let mut receipts = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading receipts file {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let receipt =
            serde_json::from_str(&line).with_context(|| format!("{} line {}: not a receipt", path.display(), n + 1))?;
        receipts.push(receipt);
    }
    Ok(receipts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sealchain_shared::hexbytes::HexBytes;

    use super::*;

    #[test]
    fn lines_with_and_without_a_proof_bundle_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.jsonl");
        let receipt = Receipt {
            seq: 7,
            leaf_hash: HexBytes([1; 32]),
            block_index: 0,
            received_at: 1_764_000_000_000,
            signature: HexBytes([2; 64]),
        };
        // A line written before proofs existed is a receipt alone.
        std::fs::write(&file, format!("{}\n\n", serde_json::to_string(&receipt).unwrap())).unwrap();
        let mut log = ReceiptLog::open(&file).unwrap();
        let proven = ReceiptLine {
            receipt: receipt.clone(),
            tlog_proof: Some("c2sp.org/tlog-proof@v1\nindex 7\n\n…".into()),
        };
        log.append(&proven).unwrap();
        log.flush().unwrap();
        assert_eq!(read(&file).unwrap(), vec![ReceiptLine::from(receipt), proven]);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.lines().last().unwrap().contains(r#""seq":7,"#) && text.contains(r#""tlog_proof":"c2sp"#));
        std::fs::write(&file, "{\"seq\": 1}\n").unwrap();
        let err = format!("{:#}", read(&file).unwrap_err());
        assert!(err.contains("line 1: not a receipt"), "{err}");
    }
}
