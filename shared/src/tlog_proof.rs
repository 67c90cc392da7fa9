//! Proof bundles (C2SP `tlog-proof`; PROTOCOL §9): an offline-verifiable
//! proof that an entry is in the log.
//!
//! > The first line MUST be the string `c2sp.org/tlog-proof@v1`. The second
//! > line MAY start with the string `extra` followed by a space and
//! > base64-encoded opaque extra data. […] The next line MUST start with the
//! > string `index` followed by a space and the zero-based index of the
//! > entry in the log […]. The next zero or more non-empty lines are the
//! > base64-encoded Merkle inclusion proof […], one SHA-256 hash per line,
//! > starting from the leaf's sibling hash up to the root's child hash.
//! > After the inclusion proof lines and an empty line, the checkpoint
//! > issued by the log is included verbatim.
//!
//! The format does not carry the entry. sealchain bundles put it in the
//! `extra` line: the entry's `signed_message` (PROTOCOL §2), so a verifier
//! holding only the bundle and the log's verifier key recomputes the leaf
//! hash and checks the message's own signature and node binding as well.
//! The extra data is not trusted for anything but that: it is accepted only
//! if its leaf hash is the one the inclusion proof proves.
//!
//! Verification is two steps, so that a caller can check the checkpoint
//! with more than the log's key (a witness policy) before the rest:
//! [`ProofBundle::checkpoint_note`] goes to [`Checkpoint::verify`], then
//! [`ProofBundle::verify_entry`] checks the entry and the inclusion proof
//! against the verified checkpoint. [`ProofBundle::verify`] does both under
//! the log's key alone.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;

use crate::Hash;
use crate::audit::{self, AuditError};
use crate::merkle::{self, ProofError};
use crate::message::Message;
use crate::note::{Checkpoint, NoteError, NoteVerifier};

/// The first line of every bundle.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// The most inclusion proof lines a bundle may hold (a tree of 2^64 − 1
/// leaves has paths of at most 64 hashes).
pub const MAX_PROOF_HASHES: usize = 64;

/// Bundles larger than this are refused: a 64 KiB checkpoint note, an
/// entry of at most 65,535 bytes in base64, and the proof fit well within.
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;

/// A tlog-proof bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofBundle {
    /// The `extra` data: for sealchain, the entry (`signed_message`).
    pub extra: Option<Vec<u8>>,
    /// The entry's index in the log (its `seq`).
    pub index: u64,
    /// The inclusion proof, from the leaf's sibling up.
    pub proof: Vec<Hash>,
    /// The checkpoint note, verbatim (text, blank line, signature lines,
    /// cosignatures included).
    pub checkpoint: String,
}

/// Why a bundle was refused. Each names the line or the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// A line that is not what the format says.
    #[error("line {line}: {why}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// The checkpoint does not parse or verify.
    #[error("the checkpoint (from line {line}): {error}")]
    Checkpoint {
        /// The line it starts on.
        line: usize,
        /// Why.
        error: NoteError,
    },
    /// No `extra` line, so no entry to check.
    #[error("the bundle carries no entry: sealchain bundles carry the signed message in the `extra` line")]
    NoEntry,
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error(
        "the inclusion proof of entry {index} does not lead to the root of the checkpoint (tree size {size}): {error}"
    )]
    Inclusion {
        /// The entry's index.
        index: u64,
        /// The checkpoint's tree size.
        size: u64,
        /// Why.
        error: ProofError,
    },
    /// The entry is not a valid sealchain message of this log.
    #[error("the entry (extra line): {0}")]
    Entry(AuditError),
}

fn line_error(line: usize, why: impl Into<String>) -> BundleError {
    BundleError::Line { line, why: why.into() }
}

/// The next line of `rest` (without its newline) and what follows it, or
/// `None` when no newline is left.
fn next_line(rest: &str) -> Option<(&str, &str)> {
    rest.split_once('\n')
}

fn canonical_decimal(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok())?
}

impl ProofBundle {
    /// The bundle's text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", STANDARD.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for hash in &self.proof {
            out.push_str(&STANDARD.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses a bundle. The checkpoint is kept verbatim; it is parsed and
    /// verified by [`Checkpoint::verify`].
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(line_error(
                1,
                format!("the bundle is larger than {MAX_BUNDLE_BYTES} bytes"),
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            line_error(line, "not UTF-8")
        })?;
        let mut line = 1;
        let (first, mut rest) = next_line(text).ok_or_else(|| line_error(1, format!("expected {HEADER:?}")))?;
        if first != HEADER {
            return Err(line_error(1, format!("expected {HEADER:?}, found {first:?}")));
        }

        line += 1;
        let (mut current, mut after) =
            next_line(rest).ok_or_else(|| line_error(line, "expected `index N` (or `extra BASE64`)"))?;
        let mut extra = None;
        if current == "extra" || current.starts_with("extra ") {
            let b64 = current.strip_prefix("extra ").unwrap_or("");
            let data = STANDARD
                .decode(b64)
                .map_err(|_| line_error(line, "the extra data is not padded standard base64"))?;
            if data.is_empty() {
                return Err(line_error(line, "an `extra` line with no data"));
            }
            extra = Some(data);
            rest = after;
            line += 1;
            (current, after) = next_line(rest).ok_or_else(|| line_error(line, "expected `index N`"))?;
        }
        let index = current
            .strip_prefix("index ")
            .ok_or_else(|| line_error(line, format!("expected `index N`, found {current:?}")))?;
        let index = canonical_decimal(index)
            .ok_or_else(|| line_error(line, "the index is not a decimal number without leading zeros"))?;
        rest = after;

        let mut proof = Vec::new();
        loop {
            line += 1;
            let (current, after) = next_line(rest).ok_or_else(|| {
                line_error(
                    line,
                    "the bundle ends before the blank line that precedes the checkpoint",
                )
            })?;
            rest = after;
            if current.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_HASHES {
                return Err(line_error(line, format!("more than {MAX_PROOF_HASHES} proof hashes")));
            }
            let hash = STANDARD
                .decode(current)
                .ok()
                .and_then(|h| Hash::try_from(h.as_slice()).ok())
                .ok_or_else(|| line_error(line, "a proof line is not a 32-byte hash in padded standard base64"))?;
            proof.push(hash);
        }
        line += 1;
        if rest.is_empty() {
            return Err(line_error(line, "no checkpoint after the blank line"));
        }
        Ok(Self {
            extra,
            index,
            proof,
            checkpoint: rest.to_owned(),
        })
    }

    /// The line the checkpoint starts on (for error messages).
    fn checkpoint_line(&self) -> usize {
        // Header, extra, index, the proof lines, the blank line.
        4 + usize::from(self.extra.is_some()) + self.proof.len()
    }

    /// The checkpoint note, for [`Checkpoint::verify`].
    pub fn checkpoint_note(&self) -> &[u8] {
        self.checkpoint.as_bytes()
    }

    /// Wraps an error of verifying [`Self::checkpoint_note`] with the line
    /// it starts on.
    pub fn checkpoint_error(&self, error: NoteError) -> BundleError {
        BundleError::Checkpoint {
            line: self.checkpoint_line(),
            error,
        }
    }

    /// Checks the entry against `checkpoint`, which the caller verified
    /// from [`Self::checkpoint_note`]: the inclusion proof leads from the
    /// entry's leaf hash at `index` to the checkpoint's root, and the entry
    /// is a well-formed message bound to `node_key` and signed by its
    /// sender. Returns the message.
    pub fn verify_entry(&self, checkpoint: &Checkpoint, node_key: &VerifyingKey) -> Result<Message, BundleError> {
        let entry = self.extra.as_deref().ok_or(BundleError::NoEntry)?;
        merkle::verify_inclusion(
            self.index,
            checkpoint.size,
            &merkle::leaf_hash(entry),
            &self.proof,
            &checkpoint.root,
        )
        .map_err(|error| BundleError::Inclusion {
            index: self.index,
            size: checkpoint.size,
            error,
        })?;
        audit::verify_entry(self.index, entry, node_key).map_err(BundleError::Entry)
    }

    /// Verifies the whole bundle under the log's key alone: the checkpoint
    /// (signature, origin), then [`Self::verify_entry`] with the log's
    /// public key as the node key.
    pub fn verify(&self, log: &NoteVerifier) -> Result<(Checkpoint, Message), BundleError> {
        let (checkpoint, _) = Checkpoint::verify(self.checkpoint_note(), log).map_err(|e| self.checkpoint_error(e))?;
        let message = self.verify_entry(&checkpoint, log.key())?;
        Ok((checkpoint, message))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::message::MessageBuilder;
    use crate::note::NoteSignature;
    use crate::tlog;

    struct Log {
        node: SigningKey,
        verifier: NoteVerifier,
        entries: Vec<Vec<u8>>,
    }

    const ORIGIN: &str = "log.example.com/sealchain";

    fn entry(node: &[u8; 32], client: &SigningKey, i: u64) -> Vec<u8> {
        MessageBuilder::new(*node, "t", &serde_json::json!(i))
            .unwrap()
            .nonce([i as u8; 16])
            .ts(1_764_000_000_000)
            .sign(client)
            .unwrap()
            .to_bytes()
    }

    /// A log of 7 good entries, then one whose signature is broken, one
    /// bound to another node, and one too short to be a message.
    fn log() -> Log {
        let node = SigningKey::from_bytes(&[1; 32]);
        let client = SigningKey::from_bytes(&[2; 32]);
        let node_pk = node.verifying_key().to_bytes();
        let mut entries: Vec<Vec<u8>> = (0..7).map(|i| entry(&node_pk, &client, i)).collect();
        let mut bad_signature = entry(&node_pk, &client, 7);
        bad_signature[3] ^= 1;
        entries.push(bad_signature);
        entries.push(entry(&[9; 32], &client, 8));
        entries.push(vec![0; 64]);
        let verifier = NoteVerifier::new(ORIGIN, node.verifying_key()).unwrap();
        Log {
            node,
            verifier,
            entries,
        }
    }

    impl Log {
        fn bundle(&self, index: u64) -> ProofBundle {
            let leaves: Vec<Hash> = self.entries.iter().map(|e| merkle::leaf_hash(e)).collect();
            let size = leaves.len() as u64;
            let proof = tlog::inclusion_proof(&mut &leaves[..], index, size).unwrap().unwrap();
            let checkpoint = Checkpoint {
                origin: ORIGIN.into(),
                size,
                root: merkle::root(&leaves),
                extensions: vec![],
            };
            ProofBundle {
                extra: Some(self.entries[index as usize].clone()),
                index,
                proof,
                checkpoint: checkpoint.sign(&self.node).unwrap().to_text(),
            }
        }
    }

    fn parse_and_verify(log: &Log, text: &str) -> Result<(Checkpoint, Message), BundleError> {
        ProofBundle::parse(text.as_bytes())?.verify(&log.verifier)
    }

    #[test]
    fn a_bundle_round_trips_and_verifies_offline() {
        let log = log();
        let bundle = log.bundle(3);
        let text = bundle.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
        assert!(text.contains("\nindex 3\n"), "{text}");
        assert!(text.contains(&format!("\n\n{ORIGIN}\n10\n")), "{text}");
        let back = ProofBundle::parse(text.as_bytes()).unwrap();
        assert_eq!(back, bundle);
        assert_eq!(back.to_text(), text);
        let (checkpoint, message) = back.verify(&log.verifier).unwrap();
        assert_eq!((checkpoint.size, message.nonce), (10, [3; 16]));
        // Every good entry of the log has a bundle that verifies.
        for i in 0..7 {
            log.bundle(i).verify(&log.verifier).unwrap();
        }
        // Cosignatures by keys the verifier does not know are ignored.
        let mut cosigned = bundle.clone();
        let mut note = crate::note::Note::parse(bundle.checkpoint.as_bytes()).unwrap();
        note.signatures.push(NoteSignature {
            name: "witness.example".into(),
            id: [1, 2, 3, 4],
            signature: vec![5; 72],
        });
        cosigned.checkpoint = note.to_text();
        cosigned.verify(&log.verifier).unwrap();
    }

    /// Every part of a bundle changed in turn: each is refused, naming the
    /// line or the check at fault.
    #[test]
    fn each_part_of_a_bundle_is_checked() {
        let log = log();
        let text = log.bundle(3).to_text();
        let lines: Vec<&str> = text.split('\n').collect();
        // lines: 0 header, 1 extra, 2 index, 3..=6 proof (4 hashes), 7 blank, 8.. checkpoint
        assert_eq!(lines[7], "", "{text}");
        let with = |i: usize, new: &str| {
            let mut l = lines.clone();
            l[i] = new;
            l.join("\n")
        };
        let without = |i: usize| {
            let mut l = lines.clone();
            l.remove(i);
            l.join("\n")
        };
        let flip_b64 = |line: &str| {
            let mut raw = STANDARD.decode(line).unwrap();
            raw[0] ^= 1;
            STANDARD.encode(raw)
        };
        fn line(n: usize, needle: &'static str) -> impl Fn(&BundleError) -> bool {
            move |e| matches!(e, BundleError::Line { line, why } if *line == n && why.contains(needle))
        }
        let inclusion = |e: &BundleError| matches!(e, BundleError::Inclusion { index: _, size: 10, .. });
        let flipped_extra = flip_b64(lines[1].strip_prefix("extra ").unwrap());
        let flipped_proof = flip_b64(lines[4]);
        let other_key = SigningKey::from_bytes(&[3; 32]);
        let forged = Checkpoint::parse("log.example.com/sealchain\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
            .unwrap()
            .sign(&other_key)
            .unwrap()
            .to_text();
        let mut forged_lines = lines[..8].to_vec();
        forged_lines.push(&forged);
        let forged = forged_lines.join("\n");
        let root_line = with(10, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        type Expect = Box<dyn Fn(&BundleError) -> bool>;
        let cases: Vec<(&str, String, Expect)> = vec![
            (
                "header",
                with(0, "c2sp.org/tlog-proof@v2"),
                Box::new(line(1, "expected")),
            ),
            ("no header", without(0), Box::new(line(1, "expected"))),
            ("extra not base64", with(1, "extra !!!"), Box::new(line(2, "base64"))),
            ("extra empty", with(1, "extra "), Box::new(line(2, "no data"))),
            ("extra without a space", with(1, "extra"), Box::new(line(2, "no data"))),
            (
                "extra flipped",
                with(1, &format!("extra {flipped_extra}")),
                Box::new(inclusion),
            ),
            (
                "extra missing",
                without(1),
                Box::new(|e: &BundleError| *e == BundleError::NoEntry),
            ),
            (
                "index leading zero",
                with(2, "index 03"),
                Box::new(line(3, "leading zeros")),
            ),
            (
                "index not a number",
                with(2, "index three"),
                Box::new(line(3, "decimal")),
            ),
            ("index negative", with(2, "index -3"), Box::new(line(3, "decimal"))),
            (
                "index too large",
                with(2, "index 18446744073709551616"),
                Box::new(line(3, "decimal")),
            ),
            (
                "index keyword",
                with(2, "idx 3"),
                Box::new(line(3, "expected `index N`")),
            ),
            ("index of another entry", with(2, "index 2"), Box::new(inclusion)),
            (
                "index beyond the tree",
                with(2, "index 10"),
                Box::new(|e: &BundleError| {
                    matches!(
                        e,
                        BundleError::Inclusion {
                            error: ProofError::IndexOutOfRange { .. },
                            ..
                        }
                    )
                }),
            ),
            (
                "proof line not base64",
                with(4, "not base64!"),
                Box::new(line(5, "32-byte hash")),
            ),
            ("proof line short", with(4, "AAAA"), Box::new(line(5, "32-byte hash"))),
            ("proof line flipped", with(4, &flipped_proof), Box::new(inclusion)),
            ("proof line missing", without(4), Box::new(inclusion)),
            (
                "proof line added",
                with(4, &format!("{}\n{}", lines[4], lines[4])),
                Box::new(inclusion),
            ),
            (
                "proof line with CR",
                with(4, &format!("{}\r", lines[4])),
                Box::new(line(5, "32-byte hash")),
            ),
            (
                "no blank line",
                without(7),
                Box::new(|e: &BundleError| matches!(e, BundleError::Line { line: 8, .. })),
            ),
            (
                "two blank lines",
                with(7, "\n"),
                Box::new(|e: &BundleError| matches!(e, BundleError::Checkpoint { line: 9, .. })),
            ),
            (
                "no checkpoint",
                lines[..8].join("\n") + "\n",
                Box::new(line(9, "no checkpoint")),
            ),
            (
                "checkpoint root changed",
                root_line,
                Box::new(|e: &BundleError| {
                    matches!(
                        e,
                        BundleError::Checkpoint {
                            line: 9,
                            error: NoteError::BadSignature(_)
                        }
                    )
                }),
            ),
            (
                "checkpoint by another key",
                forged,
                Box::new(|e: &BundleError| {
                    matches!(
                        e,
                        BundleError::Checkpoint {
                            error: NoteError::Unsigned(_),
                            ..
                        }
                    )
                }),
            ),
            (
                "checkpoint signature line cut",
                text[..text.len() - 10].to_owned() + "\n",
                Box::new(|e: &BundleError| matches!(e, BundleError::Checkpoint { .. })),
            ),
            (
                "index keyword misspelt",
                text.replacen("index", "ind\u{fffd}x", 1),
                Box::new(line(3, "expected `index N`")),
            ),
        ];
        for (what, changed, expected) in &cases {
            let error = parse_and_verify(&log, changed).expect_err(what);
            assert!(expected(&error), "{what}: {error}");
        }
        let mut invalid_utf8 = text.clone().into_bytes();
        invalid_utf8[lines[0].len() + 3] = 0xff;
        assert_eq!(
            ProofBundle::parse(&invalid_utf8),
            Err(BundleError::Line {
                line: 2,
                why: "not UTF-8".into()
            })
        );
        assert!(matches!(
            ProofBundle::parse(&vec![b'a'; MAX_BUNDLE_BYTES + 1]),
            Err(BundleError::Line { line: 1, .. })
        ));
        // Under the right key with another origin, the checkpoint's origin is wrong.
        let elsewhere = NoteVerifier::new("elsewhere.example/log", log.node.verifying_key()).unwrap();
        assert!(matches!(
            ProofBundle::parse(text.as_bytes()).unwrap().verify(&elsewhere),
            Err(BundleError::Checkpoint {
                error: NoteError::Unsigned(_),
                ..
            })
        ));
    }

    /// Entries that are in the log but are no valid message of it: the
    /// inclusion proof holds, the entry's own checks fail.
    #[test]
    fn an_included_entry_is_still_checked_as_a_message() {
        let log = log();
        let cases = [
            (7, AuditError::MessageSignature { seq: 7 }),
            (8, AuditError::WrongNode { seq: 8 }),
        ];
        for (index, expected) in cases {
            assert_eq!(
                log.bundle(index).verify(&log.verifier),
                Err(BundleError::Entry(expected))
            );
        }
        assert!(matches!(
            log.bundle(9).verify(&log.verifier),
            Err(BundleError::Entry(AuditError::InvalidMessage { seq: 9, .. }))
        ));
        let mut proof_lines = log.bundle(0);
        proof_lines.proof = vec![[0; 32]; MAX_PROOF_HASHES + 1];
        assert!(matches!(
            ProofBundle::parse(proof_lines.to_text().as_bytes()),
            Err(BundleError::Line { line: 68, .. })
        ));
    }
}
