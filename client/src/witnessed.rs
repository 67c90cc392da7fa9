//! Witness policies on the client's side (PROTOCOL §10: "A verifier given
//! a policy (witness keys and a quorum) refuses a checkpoint without enough
//! valid cosignatures").
//!
//! A command that takes `--witness-policy FILE` ([`PolicyArgs`]) loads the
//! policy (C2SP tlog-policy text) with [`load_policy`], fetches the node's
//! `GET /checkpoint` and checks it with [`witnessed_checkpoint`]: signed by
//! the node's log key (the policy's `log` lines if it has any, else the
//! pinned node's verifier key), every cosignature of a known witness valid,
//! and the quorum reached. A node showing a history the witnesses did not
//! cosign — a split view — is refused there.
//!
//! [`HistoryCheck`] then ties what a command verified to that checkpoint:
//! fed the leaf hashes of the messages it checked, in order, it recomputes
//! the tree at the cosigned size and compares the root, so the audited
//! chain is shown to be the very history the witnesses saw.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use sealchain_shared::api::LogInclusionProof;
use sealchain_shared::merkle::{self, leaf_hash_parts};
use sealchain_shared::note::NoteVerifier;
use sealchain_shared::policy::{Policy, Witnessed};
use sealchain_shared::tlog::{self, CompactRange};
use sealchain_shared::{Hash, hexbytes::HexBytes};
use serde::Serialize;

use crate::connect::Node;

/// The `--witness-policy` option.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// Require the node's checkpoint to be cosigned by witnesses as this
    /// policy says (C2SP tlog-policy text: `witness NAME VKEY`, `group`,
    /// `quorum` lines; `log VKEY` lines, if any, restrict the log keys
    /// accepted). A checkpoint without enough valid cosignatures is
    /// refused: the node may be showing you a history others do not see.
    #[arg(long, env = "SEALCHAIN_WITNESS_POLICY", value_name = "FILE")]
    pub witness_policy: Option<PathBuf>,
}

impl PolicyArgs {
    /// The policy, if one was given.
    pub fn load(&self) -> anyhow::Result<Option<(PathBuf, Policy)>> {
        self.witness_policy
            .as_ref()
            .map(|file| load_policy(file).map(|p| (file.clone(), p)))
            .transpose()
    }
}

/// Reads and parses a policy file.
pub fn load_policy(file: &Path) -> anyhow::Result<Policy> {
    let text = std::fs::read(file).with_context(|| format!("reading the witness policy {}", file.display()))?;
    Policy::parse(&text).with_context(|| format!("the witness policy {}", file.display()))
}

/// The node's log key: its verifier key, which must name its origin and
/// carry its pinned signing key.
pub fn log_key(node: &Node) -> anyhow::Result<NoteVerifier> {
    let key = NoteVerifier::parse(&node.info.verifier_key).context("the node's verifier key")?;
    if key.key() != &node.signing_key || key.name() != node.info.origin {
        bail!(
            "the node's verifier key {} is not its origin {:?} with its signing key",
            node.info.verifier_key,
            node.info.origin
        );
    }
    Ok(key)
}

/// Fetches `GET /checkpoint` and checks it against the policy.
pub async fn witnessed_checkpoint(node: &Node, policy: &Policy) -> anyhow::Result<Witnessed> {
    let body = node
        .client
        .checkpoint_note()
        .await
        .context("fetching the node's checkpoint")?;
    let log = log_key(node)?;
    policy.verify(&body, Some(&log)).with_context(|| {
        format!(
            "refusing the checkpoint of {}: it is not witnessed as the policy requires",
            node.client.base()
        )
    })
}

/// The witnessed checkpoint in a report.
#[derive(Debug, Clone, Serialize)]
pub struct WitnessReport {
    /// The policy file.
    pub policy: PathBuf,
    /// Its quorum rule.
    pub quorum: String,
    /// The cosigned tree size.
    pub tree_size: u64,
    /// Its root hash.
    pub root: HexBytes<32>,
    /// The policy's witnesses that cosigned it, with their timestamps.
    pub cosigned_by: Vec<(String, u64)>,
    /// Messages of the audit the cosigned tree covers (from the first
    /// audited one); the rest came after it.
    pub covered: u64,
}

impl WitnessReport {
    /// A report of a checkpoint accepted under the policy in `file`.
    pub fn new(file: &Path, policy: &Policy, witnessed: &Witnessed) -> Self {
        Self {
            policy: file.to_owned(),
            quorum: policy.describe_quorum(),
            tree_size: witnessed.checkpoint.size,
            root: HexBytes(witnessed.checkpoint.root),
            cosigned_by: witnessed.cosigned_by.clone(),
            covered: 0,
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.cosigned_by.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "witnessed ok: checkpoint of size {} (root {}) cosigned by {} (policy {}: {})",
            self.tree_size,
            self.root,
            names.join(", "),
            self.policy.display(),
            self.quorum
        )
    }
}

/// Recomputes the witnessed tree from the audited leaves.
#[derive(Debug)]
pub struct HistoryCheck {
    size: u64,
    root: Hash,
    range: CompactRange,
    first: u64,
    checked: bool,
}

impl HistoryCheck {
    /// A check of `witnessed` for an audit whose first leaf is `first`. The
    /// leaves before it come from the node's inclusion proof of leaf
    /// `first` in the cosigned tree: only their hashes matter, and a wrong
    /// one makes the root differ.
    pub async fn start(node: &Node, witnessed: &Witnessed, first: u64) -> anyhow::Result<Self> {
        let (size, root) = (witnessed.checkpoint.size, witnessed.checkpoint.root);
        let range = if first == 0 || first >= size {
            CompactRange::new()
        } else {
            let proof: LogInclusionProof = node
                .client
                .get_json(&format!("/v1/log/proof/inclusion?seq={first}&tree_size={size}"))
                .await
                .with_context(|| format!("fetching the inclusion proof of seq {first} in the witnessed tree"))?;
            let path: Vec<Hash> = proof.audit_path.iter().map(|h| h.0).collect();
            tlog::prefix_range(first, size, &path).context("the inclusion proof of the first audited message")?
        };
        if size == 0 && root != merkle::empty_root() {
            bail!("the witnessed checkpoint of the empty tree has another root than the empty tree's");
        }
        Ok(Self {
            size,
            root,
            range,
            first,
            // Nothing to recompute: an empty tree, or one that ends before
            // this audit's first message.
            checked: first >= size,
        })
    }

    /// Adds the next audited leaf; fails as soon as the tree at the
    /// witnessed size differs from the cosigned root.
    pub fn push(&mut self, leaf: Hash) -> anyhow::Result<()> {
        if self.checked {
            return Ok(());
        }
        self.range.append(leaf, |_| {});
        self.compare()
    }

    fn compare(&mut self) -> anyhow::Result<()> {
        if self.range.size() == self.size && !self.checked {
            if self.range.root() != self.root {
                bail!(
                    "the audited chain is not the history the witnesses cosigned: its tree of {} messages has root \
                     {}, the cosigned checkpoint {}",
                    self.size,
                    HexBytes(self.range.root()),
                    HexBytes(self.root)
                );
            }
            self.checked = true;
        }
        Ok(())
    }

    /// Ends the check: messages after the audited blocks up to the
    /// witnessed size (in the open block) are fetched and hashed. Returns
    /// how many audited messages the witnessed tree covers.
    pub async fn finish(mut self, node: &Node, audited_to: u64) -> anyhow::Result<u64> {
        if self.first >= self.size {
            return Ok(0);
        }
        let from = self.range.size();
        if !self.checked {
            let leaves: Vec<Hash> = stream::iter(from..self.size)
                .map(|seq| {
                    let client = node.client.clone();
                    async move {
                        let m = client
                            .message(seq)
                            .await
                            .with_context(|| format!("fetching message {seq} of the witnessed tree"))?;
                        anyhow::Ok(leaf_hash_parts(&m.signature.0, m.message.as_bytes()))
                    }
                })
                .buffered(8)
                .try_collect()
                .await?;
            for leaf in leaves {
                self.range.append(leaf, |_| {});
            }
            self.compare()?;
        }
        Ok(self.size.min(audited_to).saturating_sub(self.first))
    }
}
