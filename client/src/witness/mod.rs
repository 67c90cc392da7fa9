//! A transparency-log witness (C2SP `tlog-witness`, PROTOCOL §10): it
//! remembers the newest checkpoint it cosigned for each log it follows and
//! cosigns a new one only if it is consistent with that one, so a log
//! cannot show two histories to two readers without a quorum of witnesses
//! signing both.
//!
//! [`Witness::add_checkpoint`] is the whole protocol, independent of HTTP:
//! it takes the request body and answers in tlog-witness's terms
//! ([`Answer`]), in the spec's order of checks:
//!
//! | check | answer |
//! | --- | --- |
//! | the body is not `old N`, proof lines, a blank line and a signed checkpoint | `400` |
//! | the checkpoint's origin is not a log this witness follows | `404` |
//! | no signature verifies against a key trusted for that origin | `403` |
//! | `old` is above the checkpoint's size, or a proof comes with `old 0` | `400` |
//! | `old` is not the size of the newest checkpoint cosigned for the log (0 if none) | `409`, body `<size>\n`, `text/x.tlog.size` |
//! | the consistency proof from `old` does not verify | `422` |
//! | `old` equals the size but the root differs | `409`, as above |
//! | otherwise | the state is persisted, then `200` with the cosignature line |
//!
//! [`server`] puts it on HTTP; [`store`] keeps the state.

pub mod server;
pub mod store;

use std::collections::HashMap;
use std::sync::Mutex;

use sealchain_shared::cosignature::Cosigner;
use sealchain_shared::merkle::empty_root;
use sealchain_shared::note::{Checkpoint, Note, NoteError, NoteSignature, NoteVerifier};
use sealchain_shared::tlog::verify_consistency;
use sealchain_shared::witness_protocol::AddCheckpoint;

use self::store::{Decision, LogState, Store, StoreError};

/// The answer to an `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200: the cosignature lines.
    Cosigned(Vec<NoteSignature>),
    /// 409: the size of the newest checkpoint cosigned for the log.
    Conflict(u64),
    /// 400: malformed, or `old` above the checkpoint's size.
    BadRequest(String),
    /// 403: no signature by a trusted key.
    Forbidden(String),
    /// 404: the origin is not a log this witness follows.
    UnknownLog(String),
    /// 422: the consistency proof does not verify.
    BadProof(String),
}

impl Answer {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Cosigned(_) => 200,
            Self::Conflict(_) => 409,
            Self::BadRequest(_) => 400,
            Self::Forbidden(_) => 403,
            Self::UnknownLog(_) => 404,
            Self::BadProof(_) => 422,
        }
    }
}

/// A witness: its key and name, the logs it follows, its state.
#[derive(Debug)]
pub struct Witness {
    cosigner: Cosigner,
    logs: HashMap<String, Vec<NoteVerifier>>,
    store: Mutex<Store>,
}

impl Witness {
    /// A witness cosigning with `cosigner` for the logs `(origin, key)`
    /// (an origin may have several keys, e.g. during a key rotation).
    pub fn new(cosigner: Cosigner, logs: Vec<(String, NoteVerifier)>, store: Store) -> Self {
        let mut by_origin: HashMap<String, Vec<NoteVerifier>> = HashMap::new();
        for (origin, key) in logs {
            by_origin.entry(origin).or_default().push(key);
        }
        Self {
            cosigner,
            logs: by_origin,
            store: Mutex::new(store),
        }
    }

    /// The witness's cosigner (name and key).
    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    /// The origins it follows, sorted.
    pub fn origins(&self) -> Vec<&str> {
        let mut origins: Vec<&str> = self.logs.keys().map(String::as_str).collect();
        origins.sort_unstable();
        origins
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave a half-written state:
        // the transaction rolls back. Carry on with the connection.
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The newest checkpoint cosigned for `origin`.
    pub fn latest(&self, origin: &str) -> Result<Option<LogState>, StoreError> {
        self.store().get(origin)
    }

    /// How many refused requests with a valid log signature are recorded
    /// for `origin` (evidence of a misbehaving log).
    pub fn refusals(&self, origin: &str) -> Result<u64, StoreError> {
        self.store().refusals(origin)
    }

    /// Answers an `add-checkpoint` request body at time `now` (POSIX
    /// seconds). A 200 answer is returned only after the new state is on
    /// disk.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<Answer, StoreError> {
        let request = match AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return Ok(Answer::BadRequest(e.0)),
        };
        let note = match Note::parse(&request.checkpoint) {
            Ok(n) => n,
            Err(e) => return Ok(Answer::BadRequest(format!("the checkpoint: {e}"))),
        };
        let checkpoint = match Checkpoint::parse(&note.text) {
            Ok(c) => c,
            Err(e) => return Ok(Answer::BadRequest(e.to_string())),
        };
        let Some(keys) = self.logs.get(&checkpoint.origin) else {
            return Ok(Answer::UnknownLog(format!(
                "this witness does not follow the log {:?}",
                checkpoint.origin
            )));
        };
        if !keys.iter().any(|k| k.verify(&note).is_ok()) {
            let why = keys
                .iter()
                .map(|k| match k.verify(&note) {
                    Err(NoteError::BadSignature(_)) => format!("the signature by {} does not verify", k.name()),
                    _ => format!("no signature by {}", k.to_vkey()),
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(Answer::Forbidden(format!("no trusted signature: {why}")));
        }
        let (old, size) = (request.old, checkpoint.size);
        if old > size {
            return Ok(Answer::BadRequest(format!(
                "old size {old} is above the checkpoint's size {size}"
            )));
        }
        if old == 0 && !request.proof.is_empty() {
            return Ok(Answer::BadRequest(
                "the proof must be empty when the old size is 0".into(),
            ));
        }
        if i64::try_from(size).is_err() {
            return Ok(Answer::BadRequest("tree sizes above 2^63 - 1 are not supported".into()));
        }
        let cosigner = &self.cosigner;
        self.store().advance(&checkpoint.origin, body, now, |current| {
            let (have_size, have_root) = current.map_or((0, empty_root()), |c| (c.size, c.root));
            if old != have_size {
                return Decision::Refuse(Answer::Conflict(have_size));
            }
            if old == size {
                if checkpoint.root != have_root {
                    return Decision::RefuseAndRecord(
                        409,
                        format!("another root for size {size}"),
                        Answer::Conflict(have_size),
                    );
                }
                if !request.proof.is_empty() {
                    return Decision::Refuse(Answer::BadProof("the proof between equal sizes must be empty".into()));
                }
            } else if old > 0
                && let Err(e) = verify_consistency(old, size, &have_root, &checkpoint.root, &request.proof)
            {
                let why = e.to_string();
                return Decision::RefuseAndRecord(422, why.clone(), Answer::BadProof(why));
            }
            match cosigner.cosign(&note.text, now) {
                Ok(cosignature) => {
                    let mut cosigned = note.clone();
                    // Keep the log's signatures and ours, not others'.
                    cosigned
                        .signatures
                        .retain(|s| keys.iter().any(|k| s.name == k.name() && s.id == k.id()));
                    cosigned.signatures.push(cosignature.clone());
                    Decision::Advance(
                        LogState {
                            size,
                            root: checkpoint.root,
                            checkpoint: cosigned.to_text(),
                            cosigned_at: now,
                        },
                        Answer::Cosigned(vec![cosignature]),
                    )
                }
                // Only a timestamp past 2^63 − 1 fails: a broken clock.
                Err(e) => Decision::Refuse(Answer::BadRequest(format!("cannot cosign: {e}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sealchain_shared::SigningKey;
    use sealchain_shared::merkle::{leaf_hash, root};
    use sealchain_shared::tlog::consistency_proof;

    use super::*;

    const ORIGIN: &str = "log.example/test";

    fn log_key() -> SigningKey {
        SigningKey::from_bytes(&[11; 32])
    }

    fn witness(dir: &std::path::Path) -> Witness {
        let cosigner = Cosigner::new("witness.example/w", SigningKey::from_bytes(&[12; 32])).unwrap();
        let log = NoteVerifier::new(ORIGIN, log_key().verifying_key()).unwrap();
        Witness::new(cosigner, vec![(ORIGIN.into(), log)], Store::open(dir).unwrap())
    }

    fn leaves(n: u64, fork: u8) -> Vec<[u8; 32]> {
        (0..n).map(|i| leaf_hash(&[fork, i as u8, (i >> 8) as u8])).collect()
    }

    fn checkpoint(all: &[[u8; 32]], size: u64) -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: root(&all[..size as usize]),
            extensions: vec![],
        }
    }

    fn request(old: u64, all: &[[u8; 32]], size: u64) -> Vec<u8> {
        let mut source: &[[u8; 32]] = all;
        let proof = if old == 0 || old >= size {
            vec![]
        } else {
            consistency_proof(&mut source, old, size).unwrap().unwrap()
        };
        let cp = checkpoint(all, size);
        AddCheckpoint {
            old,
            proof,
            checkpoint: cp.sign(&log_key()).unwrap().to_text().into_bytes(),
        }
        .to_body()
    }

    #[test]
    fn every_answer_in_the_spec_order() {
        let dir = tempfile::tempdir().unwrap();
        let w = witness(dir.path());
        let history = leaves(20, 0);
        let fork = leaves(20, 1);
        // First contact: old 0, no proof.
        let Answer::Cosigned(lines) = w.add_checkpoint(&request(0, &history, 5), 100).unwrap() else {
            panic!("not cosigned")
        };
        assert_eq!(lines.len(), 1);
        let note_text = checkpoint(&history, 5).to_text();
        assert_eq!(w.cosigner().verifier().verify(&note_text, &lines[0]).unwrap(), 100);
        // Stale old: 409 with the size.
        assert_eq!(
            w.add_checkpoint(&request(0, &history, 8), 101).unwrap(),
            Answer::Conflict(5)
        );
        assert_eq!(
            w.add_checkpoint(&request(3, &history, 8), 101).unwrap(),
            Answer::Conflict(5)
        );
        // A proof from 5 of another history: 422, recorded.
        let mut forged = fork.clone();
        forged[..5].copy_from_slice(&history[..5]);
        forged[4] = [9; 32];
        assert!(matches!(
            w.add_checkpoint(&request(5, &forged, 8), 102).unwrap(),
            Answer::BadProof(_)
        ));
        // Same size, another root: 409, recorded.
        assert_eq!(
            w.add_checkpoint(&request(5, &fork, 5), 102).unwrap(),
            Answer::Conflict(5)
        );
        assert_eq!(w.refusals(ORIGIN).unwrap(), 2);
        // Same size, same root: cosigned again.
        assert!(matches!(
            w.add_checkpoint(&request(5, &history, 5), 103).unwrap(),
            Answer::Cosigned(_)
        ));
        // The right proof: cosigned, and the state moved.
        assert!(matches!(
            w.add_checkpoint(&request(5, &history, 8), 104).unwrap(),
            Answer::Cosigned(_)
        ));
        assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 8);
        // old above the size: 400.
        assert!(matches!(
            w.add_checkpoint(&request(9, &history, 8), 105).unwrap(),
            Answer::BadRequest(_)
        ));
        // Unknown origin: 404; a stranger's signature: 403.
        let other = Checkpoint {
            origin: "other.example/log".into(),
            size: 1,
            root: [0; 32],
            extensions: vec![],
        };
        let body = AddCheckpoint {
            old: 0,
            proof: vec![],
            checkpoint: other.sign(&log_key()).unwrap().to_text().into_bytes(),
        }
        .to_body();
        assert!(matches!(w.add_checkpoint(&body, 106).unwrap(), Answer::UnknownLog(_)));
        let stranger = checkpoint(&history, 9);
        let body = AddCheckpoint {
            old: 8,
            proof: vec![],
            checkpoint: stranger
                .sign(&SigningKey::from_bytes(&[13; 32]))
                .unwrap()
                .to_text()
                .into_bytes(),
        }
        .to_body();
        assert!(matches!(w.add_checkpoint(&body, 107).unwrap(), Answer::Forbidden(_)));
        // Malformed: 400; the state never moved on a refusal.
        assert!(matches!(
            w.add_checkpoint(b"old 8\n\nnot a note\n", 108).unwrap(),
            Answer::BadRequest(_)
        ));
        assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 8);
    }
}
