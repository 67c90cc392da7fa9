//! The node's log (PROTOCOL §9) as this client trusts it: checkpoints
//! verified under the node's verifier key (its pinned signing key and log
//! origin), each one proven consistent with the one this client saw before
//! ([`crate::log_memory`]), and inclusion proofs checked against them.
//!
//! [`accept_checkpoint`] is the one place a checkpoint note is accepted, and
//! [`verify_bundle`] the one place a proof bundle is: both build on
//! [`Checkpoint::verify`]. A [`TrustedLog`] given a witness policy
//! ([`TrustedLog::with_policy`], PROTOCOL §10) also refuses every checkpoint
//! of the node that is not cosigned as the policy requires, before anything
//! else is done with it.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sealchain_shared::Hash;
use sealchain_shared::merkle::{self, empty_root};
use sealchain_shared::message::Message;
use sealchain_shared::note::{Checkpoint, NoteError, NoteVerifier};
use sealchain_shared::policy::{Policy, Witnessed};
use sealchain_shared::tlog::verify_consistency;
use sealchain_shared::tlog_proof::{BundleError, ProofBundle};

use crate::api::{ApiError, NodeClient};
use crate::connect::Node;
use crate::global::Global;
use crate::log_memory::{LogMemory, Recorded};

/// How often a command waiting for a checkpoint asks for one.
pub const POLL: Duration = Duration::from_millis(100);

/// A checkpoint whose signature verified, with its note as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// Origin, size, root.
    pub checkpoint: Checkpoint,
    /// The signed note, verbatim (cosignatures included).
    pub note: String,
}

impl VerifiedCheckpoint {
    /// The tree size.
    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    /// The root hash, base64 as in the note.
    pub fn root_base64(&self) -> String {
        STANDARD.encode(self.checkpoint.root)
    }
}

/// Proof that the node misbehaved (an inconsistent or badly signed
/// checkpoint, a proof or entry that does not verify), as opposed to a
/// node that could not be reached. `monitor` stops on these.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LogMisbehaviour(pub String);

/// Whether `error` is only a failure to reach the node or a busy node
/// (worth trying again), not a misbehaviour.
pub fn is_transient(error: &anyhow::Error) -> bool {
    !error.chain().any(|c| c.is::<LogMisbehaviour>())
        && error.chain().any(|c| {
            matches!(
                c.downcast_ref::<ApiError>(),
                Some(ApiError::Unreachable { .. } | ApiError::Problem { status: 503 | 429, .. })
            )
        })
}

/// Accepts a checkpoint note: a signed note with a valid Ed25519 signature
/// by the log's key whose text is a checkpoint of the log's origin. Every
/// checkpoint this client trusts passes here.
pub fn accept_checkpoint(note: &[u8], log: &NoteVerifier) -> Result<VerifiedCheckpoint, NoteError> {
    let (checkpoint, _) = Checkpoint::verify(note, log)?;
    let note = std::str::from_utf8(note)
        .map_err(|_| NoteError::Malformed("not UTF-8".into()))?
        .to_owned();
    Ok(VerifiedCheckpoint { checkpoint, note })
}

/// Verifies a proof bundle under the log's key, offline: the checkpoint
/// ([`accept_checkpoint`]), the inclusion proof from the entry's leaf hash
/// to its root, and the entry as a message of this log (its signature under
/// its sender, its binding to the node).
pub fn verify_bundle(bundle: &ProofBundle, log: &NoteVerifier) -> Result<(VerifiedCheckpoint, Message), BundleError> {
    let checkpoint = accept_checkpoint(bundle.checkpoint_note(), log).map_err(|e| bundle.checkpoint_error(e))?;
    let message = bundle.verify_entry(&checkpoint.checkpoint, log.key())?;
    Ok((checkpoint, message))
}

/// The log's verifier for a node whose keys passed the pin check: its
/// origin and signing key, which must make the verifier key it serves.
pub fn verifier(node: &Node) -> anyhow::Result<NoteVerifier> {
    let verifier = NoteVerifier::new(&node.info.origin, node.signing_key)
        .with_context(|| format!("the node's log origin {:?} is not a note key name", node.info.origin))?;
    if verifier.to_vkey() != node.info.verifier_key {
        bail!(
            "the node serves verifier key {:?}, but its origin and signing key make {:?}",
            node.info.verifier_key,
            verifier.to_vkey()
        );
    }
    Ok(verifier)
}

/// What a refresh found.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// The node's checkpoint now, verified.
    pub latest: VerifiedCheckpoint,
    /// The one remembered before, which `latest` was proven consistent
    /// with (`None`: none was, or no memory is kept).
    pub seen_before: Option<Checkpoint>,
    /// Whether `latest` is now the remembered one.
    pub recorded: bool,
}

impl Refreshed {
    /// How the checkpoint relates to the one seen before, in words.
    pub fn history(&self) -> String {
        match &self.seen_before {
            None => "first checkpoint of this log this client has seen".into(),
            Some(seen) if seen.size < self.latest.size() => {
                format!("consistent with the checkpoint of size {} seen before", seen.size)
            }
            Some(seen) if seen.size == self.latest.size() => "unchanged since seen before".into(),
            Some(seen) => format!(
                "older than the checkpoint of size {} seen before (consistent with it; that one stays remembered)",
                seen.size
            ),
        }
    }

    /// `first`, `extended`, `unchanged` or `older` (for `--json`).
    pub fn history_code(&self) -> &'static str {
        match &self.seen_before {
            None => "first",
            Some(seen) if seen.size < self.latest.size() => "extended",
            Some(seen) if seen.size == self.latest.size() => "unchanged",
            Some(_) => "older",
        }
    }
}

/// A node's log.
#[derive(Debug, Clone)]
pub struct TrustedLog {
    client: NodeClient,
    verifier: NoteVerifier,
    memory: Option<LogMemory>,
    policy: Option<std::sync::Arc<Policy>>,
}

/// Checks a checkpoint note against a witness policy, with the node's log
/// key as the log key unless the policy names its own; a refusal is a
/// [`LogMisbehaviour`]: the node shows a history its witnesses did not
/// cosign (or not enough of them).
pub fn witnessed(note: &[u8], log: &NoteVerifier, policy: &Policy) -> anyhow::Result<Witnessed> {
    policy.verify(note, Some(log)).map_err(|e| {
        anyhow!(LogMisbehaviour(format!(
            "the checkpoint is not witnessed as the policy requires ({}): {e}",
            policy.describe_quorum()
        )))
    })
}

impl TrustedLog {
    /// The log of `node`, remembering in `memory` (`None`: remember
    /// nothing, compare with nothing).
    pub fn new(node: &Node, memory: Option<LogMemory>) -> anyhow::Result<Self> {
        Ok(Self {
            client: node.client.clone(),
            verifier: verifier(node)?,
            memory,
            policy: None,
        })
    }

    /// Accept only checkpoints cosigned as `policy` requires (`None`: the
    /// node's signature is enough).
    pub fn with_policy(mut self, policy: Option<Policy>) -> Self {
        self.policy = policy.map(std::sync::Arc::new);
        self
    }

    /// The policy's verdict on a checkpoint this log accepted: which
    /// witnesses cosigned it (`None` without a policy).
    pub fn witnesses_of(&self, checkpoint: &VerifiedCheckpoint) -> anyhow::Result<Option<Witnessed>> {
        self.policy
            .as_deref()
            .map(|policy| witnessed(checkpoint.note.as_bytes(), &self.verifier, policy))
            .transpose()
    }

    /// The witness policy, if any.
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_deref()
    }

    /// The log of `node`, remembered in the data directory.
    pub fn remembered(global: &Global, node: &Node) -> anyhow::Result<Self> {
        Self::new(node, Some(LogMemory::new(global.log_dir(&node.info.signing_key)?)))
    }

    /// The log's verifier.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// Where it is remembered.
    pub fn memory(&self) -> Option<&LogMemory> {
        self.memory.as_ref()
    }

    /// `GET /checkpoint`, verified.
    pub async fn fetch(&self) -> anyhow::Result<VerifiedCheckpoint> {
        let note = self
            .client
            .checkpoint_note()
            .await
            .with_context(|| format!("GET {}/checkpoint", self.client.base()))?;
        let checkpoint = accept_checkpoint(&note, &self.verifier).map_err(|e| {
            anyhow!(LogMisbehaviour(format!(
                "the node's checkpoint does not verify under {}: {e}",
                self.verifier.to_vkey()
            )))
        })?;
        if let Some(policy) = &self.policy {
            witnessed(&note, &self.verifier, policy).with_context(|| {
                format!(
                    "refusing the checkpoint of size {} of {}",
                    checkpoint.size(),
                    self.client.base()
                )
            })?;
        }
        Ok(checkpoint)
    }

    /// Checks that the tree of `old_size` leaves with root `old_root` is a
    /// prefix of the tree of `new` (`old_size` ≤ `new.size`), with the
    /// node's consistency proof where the sizes differ. `Ok(Err(why))`
    /// when it is not.
    pub async fn consistency(
        &self,
        old_size: u64,
        old_root: &Hash,
        new: &Checkpoint,
    ) -> anyhow::Result<Result<(), String>> {
        if old_size == 0 {
            return Ok((*old_root == empty_root())
                .then_some(())
                .ok_or_else(|| "a tree of size 0 whose root is not the empty tree's".to_owned()));
        }
        if old_size == new.size {
            return Ok((*old_root == new.root)
                .then_some(())
                .ok_or_else(|| format!("two different roots for tree size {old_size}")));
        }
        let proof = self.client.log_consistency(old_size, new.size).await.with_context(|| {
            format!(
                "fetching the consistency proof from tree size {old_size} to {}",
                new.size
            )
        })?;
        if (proof.from, proof.to) != (old_size, new.size) {
            return Ok(Err(format!(
                "asked for the proof {old_size} → {}, the node answered {} → {}",
                new.size, proof.from, proof.to
            )));
        }
        let hashes: Vec<Hash> = proof.proof.iter().map(|h| h.0).collect();
        Ok(verify_consistency(old_size, new.size, old_root, &new.root, &hashes).map_err(|e| e.to_string()))
    }

    /// Like [`TrustedLog::consistency`] between two checkpoints in either
    /// order; a failure is a [`LogMisbehaviour`] naming both.
    async fn prove_consistent(&self, a: &Checkpoint, b: &Checkpoint) -> anyhow::Result<()> {
        let (older, newer) = if a.size <= b.size { (a, b) } else { (b, a) };
        self.consistency(older.size, &older.root, newer).await?.map_err(|why| {
            anyhow!(LogMisbehaviour(format!(
                "the checkpoint of size {} (root {}) does not extend the checkpoint of size {} (root {}): {why}",
                newer.size,
                STANDARD.encode(newer.root),
                older.size,
                STANDARD.encode(older.root)
            )))
        })
    }

    /// Fetches the node's checkpoint, verifies it, proves it consistent
    /// with the remembered one, and remembers it if it is newer.
    pub async fn refresh(&self) -> anyhow::Result<Refreshed> {
        let latest = self.fetch().await?;
        let Some(memory) = &self.memory else {
            return Ok(Refreshed {
                latest,
                seen_before: None,
                recorded: false,
            });
        };
        // Another process may remember a newer checkpoint meanwhile; then
        // check against that one too.
        for _ in 0..8 {
            let seen = memory.load_checkpoint(&self.verifier)?;
            if let Some(seen) = &seen {
                self.prove_consistent(&seen.checkpoint, &latest.checkpoint)
                    .await
                    .with_context(|| {
                        format!(
                            "the log is not consistent with what this client saw before ({})",
                            memory.checkpoint_file().display()
                        )
                    })?;
            }
            let recorded = match memory.record(seen.as_ref(), &latest)? {
                Recorded::Changed => continue,
                Recorded::Saved => true,
                Recorded::Kept => false,
            };
            return Ok(Refreshed {
                latest,
                seen_before: seen.map(|s| s.checkpoint),
                recorded,
            });
        }
        bail!(
            "the remembered checkpoint {} keeps changing under this command (other sealchain processes?)",
            memory.checkpoint_file().display()
        )
    }

    /// Refreshes until the checkpoint covers `size` entries, for at most
    /// `timeout`.
    pub async fn wait_for(&self, size: u64, timeout: Duration) -> anyhow::Result<Refreshed> {
        let deadline = Instant::now() + timeout;
        loop {
            let refreshed = self.refresh().await?;
            if refreshed.latest.size() >= size {
                return Ok(refreshed);
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "no checkpoint of the log covers {size} entries after {} (the newest has size {})",
                    crate::duration::format_duration(timeout),
                    refreshed.latest.size()
                );
            }
            actix_rt::time::sleep(POLL.min(deadline - now)).await;
        }
    }

    /// The node's inclusion proof of entry `seq` (leaf hash `leaf`) in the
    /// tree of `checkpoint`, verified against its root.
    pub async fn inclusion_proof(&self, seq: u64, leaf: &Hash, checkpoint: &Checkpoint) -> anyhow::Result<Vec<Hash>> {
        let size = checkpoint.size;
        let proof = self
            .client
            .log_inclusion(seq, size)
            .await
            .with_context(|| format!("fetching the inclusion proof of seq {seq} in the tree of size {size}"))?;
        let bad = |why: String| {
            anyhow!(LogMisbehaviour(format!(
                "the inclusion proof of seq {seq} in the tree of size {size}: {why}"
            )))
        };
        if (proof.seq, proof.tree_size) != (seq, size) {
            return Err(bad(format!(
                "the node answered for seq {} in size {}",
                proof.seq, proof.tree_size
            )));
        }
        if proof.leaf_hash.0 != *leaf {
            return Err(bad(format!(
                "it names leaf hash {}, the message has {}",
                proof.leaf_hash,
                hex::encode(leaf)
            )));
        }
        let path: Vec<Hash> = proof.audit_path.iter().map(|h| h.0).collect();
        merkle::verify_inclusion(seq, size, leaf, &path, &checkpoint.root).map_err(|e| {
            bad(format!(
                "{e} (the checkpoint's root {})",
                STANDARD.encode(checkpoint.root)
            ))
        })?;
        Ok(path)
    }

    /// Waits for a checkpoint covering `seq`, then [`TrustedLog::prove_in`]
    /// that one.
    pub async fn prove_entry(
        &self,
        seq: u64,
        entry: &[u8],
        timeout: Duration,
    ) -> anyhow::Result<(ProofBundle, VerifiedCheckpoint)> {
        let refreshed = self.wait_for(seq + 1, timeout).await?;
        self.prove_in(seq, entry, refreshed.latest).await
    }

    /// Fetches the inclusion proof of `entry` (its `signed_message`) at
    /// `seq` in the tree of `checkpoint`, a verified checkpoint covering it,
    /// and returns the proof bundle, checked exactly as `proof --verify`
    /// checks it, with its checkpoint.
    pub async fn prove_in(
        &self,
        seq: u64,
        entry: &[u8],
        checkpoint: VerifiedCheckpoint,
    ) -> anyhow::Result<(ProofBundle, VerifiedCheckpoint)> {
        let path = self
            .inclusion_proof(seq, &merkle::leaf_hash(entry), &checkpoint.checkpoint)
            .await?;
        let bundle = ProofBundle {
            extra: Some(entry.to_vec()),
            index: seq,
            proof: path,
            checkpoint: checkpoint.note,
        };
        let (checkpoint, _) = verify_bundle(&bundle, &self.verifier)
            .map_err(|e| anyhow!(LogMisbehaviour(format!("the proof bundle of seq {seq}: {e}"))))?;
        Ok((bundle, checkpoint))
    }
}
