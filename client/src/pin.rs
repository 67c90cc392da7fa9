//! Known nodes: pinning each node's keys on first contact (trust on first
//! use), the way SSH keeps `known_hosts`.
//!
//! The first command that talks to a node URL appends a line with the
//! node's signing key, encryption key, block size and log origin to the known-nodes
//! file (`known_nodes` in the user's data directory unless `--pin-file`
//! says otherwise). Every later command compares what the node at that URL
//! serves with its line and refuses a node whose keys, block size or origin
//! differ: a node that swapped its keys could read new messages and sign a
//! forged chain, and the origin names the log whose checkpoints the signing
//! key signs (its verifier key is origin and signing key). The error names
//! the file and line to remove if the change was intended. One file holds
//! any number of nodes.
//!
//! ```text
//! # sealchain known nodes: <url> <signing key> <encryption key> <block size> <log origin>
//! http://127.0.0.1:8080 6685c333…88f8 931f2485…2625 100 sealchain.local/6685c333e5a1b2c4
//! ```
//!
//! A line written before the log existed has no origin; the next contact
//! that matches its keys adds the node's origin to it (trust on first use,
//! as for the keys).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sealchain_shared::api::{Hex32, NodeInfo};
use serde::Serialize;

/// First line of a new known-nodes file.
const HEADER: &str = "# sealchain known nodes: <url> <signing key> <encryption key> <block size> <log origin>\n";

/// One pinned node: a line of the known-nodes file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownNode {
    /// Its line in the file (1-based).
    pub line: usize,
    /// The node's URL, as commands name it (without a trailing slash).
    pub url: String,
    /// Its Ed25519 signing key.
    pub signing_key: Hex32,
    /// Its X25519 encryption key.
    pub encryption_key: Hex32,
    /// Its chain's block size.
    pub block_size: u32,
    /// Its log's origin (`None` on a line written before the log existed).
    pub origin: Option<String>,
}

impl KnownNode {
    fn to_line(&self) -> String {
        let mut line = format!(
            "{} {} {} {}",
            self.url, self.signing_key, self.encryption_key, self.block_size
        );
        if let Some(origin) = &self.origin {
            line.push(' ');
            line.push_str(origin);
        }
        line.push('\n');
        line
    }

    /// Whether `served` has the keys, block size and origin of this line
    /// (a line without an origin matches any).
    fn matches(&self, served: &KnownNode) -> bool {
        self.signing_key == served.signing_key
            && self.encryption_key == served.encryption_key
            && self.block_size == served.block_size
            && self.origin.as_ref().is_none_or(|o| Some(o) == served.origin.as_ref())
    }
}

/// The URL as stored: without trailing slashes.
pub fn normalize_url(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// How the node's keys were checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum PinStatus {
    /// The keys match the node's line (and `--node-key` if given).
    Matched {
        /// The known-nodes file.
        file: PathBuf,
        /// The node's line.
        line: usize,
    },
    /// First contact: a line was added.
    Pinned {
        /// The known-nodes file.
        file: PathBuf,
        /// The new line.
        line: usize,
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
    /// The node's keys differ from its line.
    #[error("{0}")]
    PinFile(Box<Mismatch>),
    /// The file cannot be read or written, or a line does not parse.
    #[error("known-nodes file {}: {reason}", .file.display())]
    File {
        /// The file.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// What a node serves and what its line pins, when they differ.
#[derive(Debug)]
pub struct Mismatch {
    /// The file.
    pub file: PathBuf,
    /// The line as pinned.
    pub pinned: KnownNode,
    /// What the node serves now.
    pub served: KnownNode,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, line) = (self.file.display(), self.pinned.line);
        let (p, s) = (&self.pinned, &self.served);
        let mut differs = Vec::new();
        if p.signing_key != s.signing_key {
            differs.push(format!("signing key {} (pinned {})", s.signing_key, p.signing_key));
        }
        if p.encryption_key != s.encryption_key {
            differs.push(format!(
                "encryption key {} (pinned {})",
                s.encryption_key, p.encryption_key
            ));
        }
        if p.block_size != s.block_size {
            differs.push(format!("block size {} (pinned {})", s.block_size, p.block_size));
        }
        if let (Some(pinned), Some(served)) = (&p.origin, &s.origin)
            && pinned != served
        {
            differs.push(format!("log origin {served} (pinned {pinned})"));
        }
        write!(
            f,
            "node key mismatch: the node at {} now serves {}, unlike {file}:{line}; refusing to talk to it \
             (if this change is intended, remove line {line} of {file}, or run `sealchain nodes forget {}`)",
            s.url,
            differs.join(", "),
            s.url
        )
    }
}

/// The known-nodes file.
#[derive(Debug, Clone)]
pub struct KnownNodes {
    file: PathBuf,
}

impl KnownNodes {
    /// The file at `file` (which need not exist yet).
    pub fn new(file: PathBuf) -> Self {
        Self { file }
    }

    /// Its path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    fn error(&self, reason: impl Into<String>) -> PinError {
        PinError::File {
            file: self.file.clone(),
            reason: reason.into(),
        }
    }

    /// Every node line; none if the file does not exist. A line that does
    /// not parse is an error naming it: the file is never silently ignored.
    pub fn entries(&self) -> Result<Vec<KnownNode>, PinError> {
        let text = match fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e.to_string())),
        };
        let mut nodes = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let bad = |why: &str| {
                self.error(format!(
                    "line {}: {why} (expected `<url> <signing key> <encryption key> <block size> <log origin>`; fix or remove the line)",
                    i + 1
                ))
            };
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            let (url, signing, encryption, block_size, origin) = match fields[..] {
                [url, signing, encryption, block_size] => (url, signing, encryption, block_size, None),
                [url, signing, encryption, block_size, origin] => {
                    sealchain_shared::note::check_origin(origin).map_err(|_| bad("bad log origin"))?;
                    (url, signing, encryption, block_size, Some(origin.to_owned()))
                }
                _ => return Err(bad("not five fields")),
            };
            nodes.push(KnownNode {
                line: i + 1,
                url: url.to_owned(),
                signing_key: signing.parse().map_err(|_| bad("bad signing key"))?,
                encryption_key: encryption.parse().map_err(|_| bad("bad encryption key"))?,
                block_size: block_size.parse().map_err(|_| bad("bad block size"))?,
                origin,
            });
        }
        Ok(nodes)
    }

    /// The line of `url` (the first, if two processes pinned at once).
    pub fn find(&self, url: &str) -> Result<Option<KnownNode>, PinError> {
        let url = normalize_url(url);
        Ok(self.entries()?.into_iter().find(|n| n.url == url))
    }

    /// Appends a node's line (one write, so concurrent first contacts do
    /// not interleave), creating the file and its directory if needed.
    fn append(&self, node: &KnownNode) -> Result<(), PinError> {
        if let Some(dir) = self.file.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| self.error(format!("creating {}: {e}", dir.display())))?;
        }
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.file)
            .map_err(|e| self.error(e.to_string()))?;
        let empty = f.metadata().map(|m| m.len() == 0).unwrap_or(false);
        let mut text = if empty { HEADER.to_owned() } else { String::new() };
        text.push_str(&node.to_line());
        f.write_all(text.as_bytes()).map_err(|e| self.error(e.to_string()))?;
        f.sync_all().map_err(|e| self.error(e.to_string()))
    }

    /// Removes the lines of `url`; returns them. The file is replaced
    /// atomically (a sibling written, then renamed).
    pub fn forget(&self, url: &str) -> Result<Vec<KnownNode>, PinError> {
        let url = normalize_url(url);
        let removed: Vec<KnownNode> = self.entries()?.into_iter().filter(|n| n.url == url).collect();
        if !removed.is_empty() {
            self.rewrite(|number, line| (!removed.iter().any(|n| n.line == number)).then(|| line.to_owned()))?;
        }
        Ok(removed)
    }

    /// Replaces the file atomically (a sibling written, then renamed) with
    /// what `keep` makes of each line (1-based number and text; `None`
    /// drops it).
    fn rewrite(&self, keep: impl Fn(usize, &str) -> Option<String>) -> Result<(), PinError> {
        let text = fs::read_to_string(&self.file).map_err(|e| self.error(e.to_string()))?;
        let kept: String = text
            .lines()
            .enumerate()
            .filter_map(|(i, l)| keep(i + 1, l))
            .map(|l| format!("{l}\n"))
            .collect();
        let tmp = self.file.with_extension("tmp");
        fs::write(&tmp, kept).map_err(|e| self.error(e.to_string()))?;
        fs::rename(&tmp, &self.file).map_err(|e| self.error(e.to_string()))
    }
}

/// What to check the node's keys against.
#[derive(Debug, Clone)]
pub struct PinPolicy {
    /// `--node-key`.
    pub node_key: Option<Hex32>,
    /// The known-nodes file, unless `--no-pin`.
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
        // The origin goes into the file: it must be one word of a line.
        sealchain_shared::note::check_origin(&info.origin).map_err(|e| PinError::File {
            file: file.clone(),
            reason: format!("the node at {url} serves a log origin that cannot be pinned: {e}"),
        })?;
        let known = KnownNodes::new(file.clone());
        let served = KnownNode {
            line: 0,
            url: normalize_url(url).to_owned(),
            signing_key: info.signing_key,
            encryption_key: info.encryption_key,
            block_size: info.block_size,
            origin: Some(info.origin.clone()),
        };
        let pinned = match known.find(url)? {
            Some(pinned) => pinned,
            None => {
                known.append(&served)?;
                // Another process may have pinned the URL at the same
                // moment: the first line wins, and this one compares.
                let first = known
                    .find(url)?
                    .ok_or_else(|| known.error("the line just written is missing"))?;
                if first.to_line() == served.to_line() {
                    return Ok(PinStatus::Pinned {
                        file: file.clone(),
                        line: first.line,
                    });
                }
                first
            }
        };
        if pinned.matches(&served) {
            if pinned.origin.is_none() {
                // A line from before the log: pin its origin now.
                let upgraded = KnownNode {
                    line: pinned.line,
                    ..served.clone()
                };
                known.rewrite(|number, line| {
                    Some(if number == pinned.line {
                        upgraded.to_line().trim_end().to_owned()
                    } else {
                        line.to_owned()
                    })
                })?;
            }
            return Ok(PinStatus::Matched {
                file: file.clone(),
                line: pinned.line,
            });
        }
        Err(PinError::PinFile(Box::new(Mismatch {
            file: file.clone(),
            pinned,
            served,
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

    fn policy(file: &Path) -> PinPolicy {
        PinPolicy {
            node_key: None,
            file: Some(file.to_owned()),
        }
    }

    #[test]
    fn first_contact_pins_then_later_contacts_compare_per_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data/known_nodes");
        let p = policy(&file);
        assert!(matches!(
            p.check("http://a:1/", &info(1, 2)).unwrap(),
            PinStatus::Pinned { line: 2, .. }
        ));
        assert!(matches!(
            p.check("http://a:1", &info(1, 2)).unwrap(),
            PinStatus::Matched { line: 2, .. }
        ));
        // Another node, another line: one file, two nodes.
        assert!(matches!(
            p.check("http://b:1", &info(3, 4)).unwrap(),
            PinStatus::Pinned { line: 3, .. }
        ));
        assert!(matches!(
            p.check("http://a:1", &info(1, 2)).unwrap(),
            PinStatus::Matched { line: 2, .. }
        ));
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# sealchain known nodes"));
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn a_changed_key_or_block_size_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_nodes");
        let p = policy(&file);
        p.check("http://a:1", &info(1, 2)).unwrap();
        p.check("http://b:1", &info(5, 6)).unwrap();
        let err = p.check("http://b:1", &info(7, 6)).unwrap_err().to_string();
        let at = format!("{}:3", file.display());
        assert!(err.contains(&at) && err.contains("remove line 3"), "{err}");
        assert!(
            err.contains("signing key 0707") && !err.contains("encryption key"),
            "{err}"
        );
        let mut other = info(1, 2);
        other.block_size = 50;
        let err = p.check("http://a:1", &other).unwrap_err().to_string();
        assert!(err.contains("block size 50 (pinned 100)"), "{err}");
        // forget, then the new keys are pinned.
        let removed = KnownNodes::new(file.clone()).forget("http://b:1/").unwrap();
        assert_eq!(removed.len(), 1);
        assert!(matches!(
            p.check("http://b:1", &info(7, 6)).unwrap(),
            PinStatus::Pinned { .. }
        ));
        assert!(KnownNodes::new(file).forget("http://nowhere").unwrap().is_empty());
    }

    #[test]
    fn the_log_origin_is_pinned_and_a_line_without_one_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_nodes");
        let p = policy(&file);
        p.check("http://a:1", &info(1, 2)).unwrap();
        let pinned = KnownNodes::new(file.clone()).find("http://a:1").unwrap().unwrap();
        assert_eq!(pinned.origin.as_deref(), Some("sealchain.local/0101010101010101"));
        let mut moved = info(1, 2);
        moved.origin = "log.example.com/other".into();
        let err = p.check("http://a:1", &moved).unwrap_err().to_string();
        assert!(
            err.contains("log origin log.example.com/other (pinned sealchain.local/0101010101010101)"),
            "{err}"
        );
        // A line from before the log (four fields) matches on its keys and
        // is given the origin; from then on the origin is checked.
        fs::write(
            &file,
            format!("{HEADER}http://b:1 {} {} 100\n", HexBytes([3; 32]), HexBytes([4; 32])),
        )
        .unwrap();
        assert!(matches!(
            p.check("http://b:1", &moved_to(3, 4, "log.example.com/b")).unwrap(),
            PinStatus::Matched { line: 2, .. }
        ));
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with(HEADER) && text.lines().nth(1).unwrap().ends_with(" 100 log.example.com/b"),
            "{text}"
        );
        assert!(p.check("http://b:1", &moved_to(3, 4, "log.example.com/c")).is_err());
        // An origin that cannot be one word of a line is refused, and
        // nothing is written.
        let before = fs::read_to_string(&file).unwrap();
        let err = p
            .check("http://c:1", &moved_to(5, 6, "two words\nhttp://evil 00 00 1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be pinned"), "{err}");
        assert_eq!(fs::read_to_string(&file).unwrap(), before);
    }

    fn moved_to(signing: u8, encryption: u8, origin: &str) -> NodeInfo {
        NodeInfo {
            origin: origin.into(),
            ..info(signing, encryption)
        }
    }

    #[test]
    fn node_key_and_no_pin() {
        let none = PinPolicy {
            node_key: Some(HexBytes([1; 32])),
            file: None,
        };
        assert_eq!(none.check("u", &info(1, 2)).unwrap(), PinStatus::NodeKeyOnly);
        assert!(matches!(none.check("u", &info(9, 2)), Err(PinError::NodeKey { .. })));
        let off = PinPolicy {
            node_key: None,
            file: None,
        };
        assert_eq!(off.check("u", &info(1, 2)).unwrap(), PinStatus::Off);
    }

    #[test]
    fn a_corrupt_line_is_an_error_not_a_new_pin() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_nodes");
        fs::write(&file, "# comment\nhttp://a:1 nothex\n").unwrap();
        let err = policy(&file).check("http://a:1", &info(1, 2)).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("not five fields"), "{err}");
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "# comment\nhttp://a:1 nothex\n",
            "unchanged"
        );
    }
}
