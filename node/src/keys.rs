//! The node's key directory: `signing.pem` (Ed25519, signs blocks and
//! receipts) and `encryption.pem` (X25519, opens envelopes), both PKCS#8
//! PEM with mode 0600 (PROTOCOL §1).

use std::path::Path;

use anyhow::{Context, bail};
use sealchain_shared::SigningKey;
use sealchain_shared::keys::{self, EncryptionKey};

/// File name of the Ed25519 signing key.
pub const SIGNING_KEY_FILE: &str = "signing.pem";
/// File name of the X25519 encryption key.
pub const ENCRYPTION_KEY_FILE: &str = "encryption.pem";

/// The node's two key pairs.
#[derive(Debug)]
pub struct NodeKeys {
    /// Signs blocks and receipts.
    pub signing: SigningKey,
    /// Opens envelopes.
    pub encryption: EncryptionKey,
}

impl NodeKeys {
    /// Creates both keys in `dir`; fails if either file exists.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        create_dir(dir)?;
        let (signing_path, encryption_path) = (dir.join(SIGNING_KEY_FILE), dir.join(ENCRYPTION_KEY_FILE));
        for path in [&signing_path, &encryption_path] {
            if path.exists() {
                bail!("{} already exists; refusing to overwrite node keys", path.display());
            }
        }
        let keys = Self {
            signing: keys::generate_signing_key()?,
            encryption: EncryptionKey::generate()?,
        };
        keys::save_signing_key(&signing_path, &keys.signing)?;
        keys::save_encryption_key(&encryption_path, &keys.encryption)?;
        Ok(keys)
    }

    /// Loads both keys from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            signing: keys::load_signing_key(&dir.join(SIGNING_KEY_FILE))?,
            encryption: keys::load_encryption_key(&dir.join(ENCRYPTION_KEY_FILE))?,
        })
    }

    /// Loads the keys, or creates them when `dir` holds neither file.
    /// Returns whether they were created. One file without the other is an
    /// error: silently replacing half of a node's identity would fork it.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<(Self, bool)> {
        let signing = dir.join(SIGNING_KEY_FILE).exists();
        let encryption = dir.join(ENCRYPTION_KEY_FILE).exists();
        match (signing, encryption) {
            (true, true) => Ok((Self::load(dir)?, false)),
            (false, false) => Ok((Self::create(dir)?, true)),
            _ => bail!(
                "{} holds only one of {SIGNING_KEY_FILE} and {ENCRYPTION_KEY_FILE}; restore the missing file \
                 or move both away to create a new identity",
                dir.display()
            ),
        }
    }

    /// Hex of the Ed25519 public key.
    pub fn signing_public_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().as_bytes())
    }

    /// Hex of the X25519 public key.
    pub fn encryption_public_hex(&self) -> String {
        hex::encode(self.encryption.public_key().as_bytes())
    }
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    keys::create_key_dir(dir).with_context(|| format!("creating key directory {}", dir.display()))
}
