//! Pinning the node's keys (trust on first use).
//!
//! The first command that talks to a node writes the node's signing and
//! encryption keys to the pin file (`./.sealchain-pin.json` unless
//! `--pin-file` says otherwise). Every later command compares the keys the
//! node serves with the pinned ones and refuses a node whose keys differ:
//! a node that swapped its keys could read new messages and sign a forged
//! chain. `--node-key` pins the signing key from a source you trust more
//! than the first answer.
//!
//! A pin file pins one node identity, not one URL: several node processes
//! that share a chain share its keys, and pointing the same working
//! directory at another chain is exactly the mistake the pin catches.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sealchain_shared::api::{Hex32, NodeInfo};
use serde::{Deserialize, Serialize};

/// The pin file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// The node's Ed25519 signing key.
    pub signing_key: Hex32,
    /// The node's X25519 encryption key.
    pub encryption_key: Hex32,
    /// Where the node was first contacted (informational).
    pub node: String,
    /// When it was pinned, Unix ms (informational).
    pub pinned_at: i64,
}

/// How the node's keys were checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum PinStatus {
    /// The keys match the pin file (and `--node-key` if given).
    Matched {
        /// The pin file.
        file: PathBuf,
    },
    /// First contact: the keys were written to the pin file.
    Pinned {
        /// The pin file.
        file: PathBuf,
    },
    /// Only `--node-key` was checked (`--no-pin`).
    NodeKeyOnly,
    /// Nothing was checked (`--no-pin` without `--node-key`).
    Off,
}

/// Why the node is refused.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The node signs with another key than `--node-key`.
    #[error(
        "node key mismatch: the node at {url} signs with {served}, but --node-key pins {pinned}; refusing to talk to it"
    )]
    NodeKey {
        /// The node's URL.
        url: String,
        /// The key it serves.
        served: Hex32,
        /// The key given.
        pinned: Hex32,
    },
    /// The node's keys differ from the pin file.
    #[error("{0}")]
    PinFile(Box<Mismatch>),
    /// The pin file cannot be read or written.
    #[error("pin file {}: {reason}", .file.display())]
    File {
        /// The pin file.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The keys a node serves and the keys a pin file holds, when they differ.
#[derive(Debug)]
pub struct Mismatch {
    /// The node's URL.
    pub url: String,
    /// The pin file.
    pub file: PathBuf,
    /// Signing key served.
    pub served_signing: Hex32,
    /// Encryption key served.
    pub served_encryption: Hex32,
    /// Signing key pinned.
    pub pinned_signing: Hex32,
    /// Encryption key pinned.
    pub pinned_encryption: Hex32,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        write!(
            f,
            "node key mismatch: the node at {} serves signing key {} and encryption key {}, \
             but {file} pins signing key {} and encryption key {}; refusing to talk to it \
             (if the node's keys changed on purpose, delete {file} to pin the new ones)",
            self.url, self.served_signing, self.served_encryption, self.pinned_signing, self.pinned_encryption
        )
    }
}

impl Pin {
    /// Reads a pin file; `None` if it does not exist.
    pub fn load(file: &Path) -> Result<Option<Self>, PinError> {
        let bad = |reason: String| PinError::File {
            file: file.to_owned(),
            reason,
        };
        match fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| bad(format!("not a sealchain pin file ({e}); delete it to pin again"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// Writes a new pin file; never replaces an existing one.
    pub fn save(&self, file: &Path) -> Result<(), PinError> {
        let bad = |reason: String| PinError::File {
            file: file.to_owned(),
            reason,
        };
        let mut text = serde_json::to_string_pretty(self).map_err(|e| bad(e.to_string()))?;
        text.push('\n');
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(file)
            .map_err(|e| bad(e.to_string()))?;
        f.write_all(text.as_bytes()).map_err(|e| bad(e.to_string()))
    }
}

/// What to check the node's keys against.
#[derive(Debug, Clone)]
pub struct PinPolicy {
    /// `--node-key`.
    pub node_key: Option<Hex32>,
    /// The pin file, unless `--no-pin`.
    pub file: Option<PathBuf>,
}

impl PinPolicy {
    /// Checks `info` (served by the node at `url`), pinning it on first
    /// contact.
    pub fn check(&self, url: &str, info: &NodeInfo) -> Result<PinStatus, PinError> {
        if let Some(pinned) = self.node_key
            && pinned != info.signing_key
        {
            return Err(PinError::NodeKey {
                url: url.to_owned(),
                served: info.signing_key,
                pinned,
            });
        }
        let Some(file) = &self.file else {
            return Ok(if self.node_key.is_some() {
                PinStatus::NodeKeyOnly
            } else {
                PinStatus::Off
            });
        };
        // Two processes may meet the node for the first time together; the
        // one that loses the race to create the file compares instead.
        let pin = match Pin::load(file)? {
            Some(pin) => pin,
            None => {
                let pin = Pin {
                    signing_key: info.signing_key,
                    encryption_key: info.encryption_key,
                    node: url.to_owned(),
                    pinned_at: sealchain_shared::now_ms(),
                };
                match pin.save(file) {
                    Ok(()) => return Ok(PinStatus::Pinned { file: file.clone() }),
                    Err(e) => Pin::load(file)?.ok_or(e)?,
                }
            }
        };
        if pin.signing_key == info.signing_key && pin.encryption_key == info.encryption_key {
            return Ok(PinStatus::Matched { file: file.clone() });
        }
        Err(PinError::PinFile(Box::new(Mismatch {
            url: url.to_owned(),
            file: file.clone(),
            served_signing: info.signing_key,
            served_encryption: info.encryption_key,
            pinned_signing: pin.signing_key,
            pinned_encryption: pin.encryption_key,
        })))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use sealchain_shared::api::ClientPolicy;
    use sealchain_shared::hexbytes::HexBytes;

    use super::*;

    fn info(signing: u8, encryption: u8) -> NodeInfo {
        NodeInfo {
            signing_key: HexBytes([signing; 32]),
            encryption_key: HexBytes([encryption; 32]),
            block_size: 100,
            max_message_bytes: 16384,
            max_skew_ms: 300_000,
            client_policy: ClientPolicy::Open,
            protocol: "sealchain/v1".into(),
            origin: "sealchain.local/0101010101010101".into(),
            verifier_key: String::new(),
        }
    }

    #[test]
    fn first_contact_pins_then_later_contacts_compare() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pin.json");
        let policy = PinPolicy {
            node_key: None,
            file: Some(file.clone()),
        };
        assert!(matches!(
            policy.check("u", &info(1, 2)).unwrap(),
            PinStatus::Pinned { .. }
        ));
        assert!(matches!(
            policy.check("u", &info(1, 2)).unwrap(),
            PinStatus::Matched { .. }
        ));
        let err = policy.check("u", &info(1, 3)).unwrap_err().to_string();
        assert!(
            err.contains(&"03".repeat(32)) && err.contains(&"02".repeat(32)),
            "{err}"
        );
        let err = policy.check("u", &info(4, 2)).unwrap_err().to_string();
        assert!(
            err.contains(&"04".repeat(32)) && err.contains(&"01".repeat(32)),
            "{err}"
        );
    }

    #[test]
    fn node_key_is_checked_with_or_without_a_file() {
        let policy = PinPolicy {
            node_key: Some(HexBytes([1; 32])),
            file: None,
        };
        assert_eq!(policy.check("u", &info(1, 2)).unwrap(), PinStatus::NodeKeyOnly);
        let err = policy.check("u", &info(9, 2)).unwrap_err().to_string();
        assert!(err.contains("--node-key pins"), "{err}");
    }

    #[test]
    fn a_corrupt_pin_file_is_an_error_not_a_new_pin() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pin.json");
        fs::write(&file, "{}").unwrap();
        let policy = PinPolicy {
            node_key: None,
            file: Some(file),
        };
        let err = policy.check("u", &info(1, 2)).unwrap_err().to_string();
        assert!(err.contains("not a sealchain pin file"), "{err}");
    }
}
