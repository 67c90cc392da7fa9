//! `sealchain keygen`: client identities as PKCS#8 PEM files.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sealchain_shared::SigningKey;
use sealchain_shared::keys::{self, KeyError};
use serde::Serialize;

use crate::global::Global;
use crate::output::{emit, emit_json};

/// Create client identities: Ed25519 key files, one per client.
///
/// Writes DIR/client-000.pem, DIR/client-001.pem, … (PKCS#8 PEM, mode 0600,
/// readable by `openssl pkey`) and prints each client id, the hex of the
/// key's public half, which is the `sender` of its messages. DIR is created
/// (mode 0700) if missing. An existing key file is never overwritten: if any
/// of the files exists, nothing is written.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  sealchain keygen --out ./client-keys --count 3")]
pub struct Args {
    /// Directory for the key files.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How many identities to create.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
}

/// The key file of client `i` in `dir`: `client-000.pem`, `client-001.pem`, …
pub fn key_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("client-{i:03}.pem"))
}

/// Creates `dir` (mode 0700) unless it exists.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    sealchain_shared::keys::create_key_dir(dir).with_context(|| format!("creating key directory {}", dir.display()))
}

/// Generates a key and writes it to `path` (0600, never overwriting).
pub fn create_key(path: &Path) -> Result<SigningKey, KeyError> {
    let key = keys::generate_signing_key()?;
    keys::save_signing_key(path, &key)?;
    Ok(key)
}

/// Loads client keys 0..count from `dir`, creating the missing ones. Returns
/// the keys and how many were created.
pub fn load_or_create(dir: &Path, count: usize) -> anyhow::Result<(Vec<SigningKey>, usize)> {
    create_dir(dir)?;
    let mut created = 0;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let path = key_path(dir, i);
        let key = if path.exists() {
            keys::load_signing_key(&path)?
        } else {
            created += 1;
            create_key(&path)?
        };
        out.push(key);
    }
    Ok((out, created))
}

#[derive(Debug, Serialize)]
struct Created {
    file: PathBuf,
    client_id: String,
}

/// Runs `keygen`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let count = usize::try_from(args.count)?;
    let paths: Vec<PathBuf> = (0..count).map(|i| key_path(&args.out, i)).collect();
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        bail!(KeyError::Exists(existing.clone()));
    }
    create_dir(&args.out)?;
    let mut created = Vec::with_capacity(count);
    for path in paths {
        let key = create_key(&path)?;
        created.push(Created {
            client_id: keys::client_id(&key.verifying_key()),
            file: path,
        });
    }
    if global.json {
        return emit_json(&created);
    }
    let mut text = String::new();
    for c in &created {
        text.push_str(&format!("{}  {}\n", c.file.display(), c.client_id));
    }
    text.push_str(&format!(
        "created {} client key{} (mode 0600); the hex is each client's id\n",
        created.len(),
        if created.len() == 1 { "" } else { "s" }
    ));
    emit(&text)
}
