//! Receipt files: one receipt JSON object per line, appended as receipts
//! arrive, read back by `verify --receipts`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sealchain_shared::api::Receipt;

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
    pub fn append(&mut self, receipt: &Receipt) -> anyhow::Result<()> {
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
pub fn read(path: &Path) -> anyhow::Result<Vec<Receipt>> {
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
