//! Witness policies (C2SP `tlog-policy`; PROTOCOL §10: "A verifier given
//! a policy (witness keys and a quorum) refuses a checkpoint without enough
//! valid cosignatures").
//!
//! > The policy says that a checkpoint is considered valid if it is signed
//! > by any one of the listed logs, and it is cosigned by witnesses
//! > according to the defined quorum rule.
//!
//! The text format, line by line (items separated by spaces and tabs;
//! empty lines and `#` comments ignored):
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> all|any|<k> <name>...
//! quorum <name>|none
//! ```
//!
//! Log keys are signed-note Ed25519 keys (type 0x01) whose key name is the
//! log's origin; witness keys are tlog-cosignature Ed25519 keys (type
//! 0x04). Names (of witnesses and groups, one namespace, `none` reserved)
//! are defined before they are used, a group lists each member once with
//! 1 ≤ k ≤ n, no public key appears twice, and there is exactly one quorum
//! line. Every rule is checked, and a broken one names its line.
//!
//! [`Policy::check`] verifies a parsed checkpoint note: the log's signature
//! (one of the policy's logs, or the log the caller knows when the policy
//! lists none), every cosignature line of a known witness (one that fails
//! rejects the note, as signed-note advises; lines of unknown keys are
//! ignored), then the quorum. It names the witnesses whose cosignatures
//! were valid, on success and in the error.

use std::collections::{HashMap, HashSet};

use crate::cosignature::{CosignatureError, CosignatureVerifier};
use crate::note::{Checkpoint, Note, NoteError, NoteVerifier};

/// Most logs, witnesses and groups a policy may define (tlog-policy asks
/// implementations to support at least 32 of each).
pub const MAX_ENTRIES: usize = 256;

/// Why a policy does not parse, or a checkpoint does not satisfy it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy text breaks a rule of tlog-policy.
    #[error("policy line {line}: {reason}")]
    Parse {
        /// 1-based line number (0: the policy as a whole).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint is not validly signed by a log the policy accepts.
    #[error("the checkpoint is not signed by an accepted log: {0}")]
    Log(NoteError),
    /// The policy lists no log, and the caller gave none.
    #[error("the policy lists no log and no log key was given")]
    NoLog,
    /// A cosignature line of a known witness does not verify.
    #[error("witness {witness}: {error}")]
    BadCosignature {
        /// The witness's name in the policy.
        witness: String,
        /// Why its cosignature failed.
        error: CosignatureError,
    },
    /// Not enough witnesses cosigned.
    #[error("the checkpoint does not satisfy the witness quorum ({rule}): valid cosignatures by {}", describe_names(.valid))]
    Quorum {
        /// The policy's witnesses whose cosignatures were valid.
        valid: Vec<String>,
        /// The quorum rule, in words.
        rule: String,
    },
}

fn describe_names(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// A log of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLog {
    /// Its key (the key name is the origin).
    pub verifier: NoteVerifier,
    /// Its URL, if given.
    pub url: Option<String>,
}

/// A witness of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    /// Its name within the policy (used by groups and the quorum).
    pub name: String,
    /// Its cosignature key.
    pub verifier: CosignatureVerifier,
    /// Its submission prefix URL, if given.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    threshold: usize,
    members: Vec<Member>,
}

/// A parsed policy: logs, witnesses, groups and the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    /// `None`: `quorum none`.
    quorum: Option<Member>,
}

/// A checkpoint that satisfies a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The note as given (all its signature lines).
    pub note: Note,
    /// The verifier key of the log that signed it.
    pub log: String,
    /// The policy's witnesses whose cosignatures verified, with their
    /// timestamps (POSIX seconds), in policy order.
    pub cosigned_by: Vec<(String, u64)>,
}

impl Policy {
    /// Parses the tlog-policy text format.
    pub fn parse(text: &[u8]) -> Result<Self, PolicyError> {
        let mut b = Builder::default();
        let mut quorum: Option<Option<Member>> = None;
        for (i, raw) in text.split(|&c| c == b'\n').enumerate() {
            let line = i + 1;
            let err = |reason: String| PolicyError::Parse { line, reason };
            if let Some(&c) = raw.iter().find(|&&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
                return Err(err(format!(
                    "control character 0x{c:02x} (only tab and newline are allowed)"
                )));
            }
            let items: Vec<&[u8]> = raw
                .split(|&c| c == b' ' || c == b'\t')
                .filter(|s| !s.is_empty())
                .collect();
            let Some(first) = items.first() else { continue };
            if first.starts_with(b"#") {
                continue;
            }
            let items: Vec<&str> = items
                .iter()
                .map(|s| std::str::from_utf8(s))
                .collect::<Result<_, _>>()
                .map_err(|_| err("names, keys and URLs must be UTF-8".into()))?;
            match items.as_slice() {
                ["log", vkey] => b.log(vkey, None).map_err(err)?,
                ["log", vkey, url] => b.log(vkey, Some(url)).map_err(err)?,
                ["witness", name, vkey] => b.witness(name, vkey, None).map_err(err)?,
                ["witness", name, vkey, url] => b.witness(name, vkey, Some(url)).map_err(err)?,
                ["group", name, k, members @ ..] if !members.is_empty() => b.group(name, k, members).map_err(err)?,
                ["quorum", name] => {
                    if quorum.is_some() {
                        return Err(err("a second quorum line (a policy has exactly one)".into()));
                    }
                    quorum = Some(b.reference(name, true).map_err(err)?);
                }
                ["log" | "witness" | "group" | "quorum", ..] => {
                    return Err(err(format!("wrong number of items for `{}`", items[0])));
                }
                [other, ..] => return Err(err(format!("unknown keyword {other:?}"))),
                [] => {}
            }
        }
        let quorum = quorum.ok_or(PolicyError::Parse {
            line: 0,
            reason: "no quorum line (write `quorum none` for a policy without witnesses)".into(),
        })?;
        Ok(Self {
            logs: b.logs,
            witnesses: b.witnesses,
            groups: b.groups,
            quorum,
        })
    }

    /// A policy of `k` of the given witnesses (the node's `--witness` and
    /// `--witness-quorum`), without logs.
    pub fn threshold(witnesses: Vec<PolicyWitness>, k: usize) -> Result<Self, PolicyError> {
        let mut b = Builder::default();
        let mut names = Vec::new();
        for (i, w) in witnesses.into_iter().enumerate() {
            let err = |reason: String| PolicyError::Parse { line: i + 1, reason };
            b.witness(&w.name, &w.verifier.to_vkey(), w.url.as_deref())
                .map_err(err)?;
            names.push(w.name);
        }
        let n = names.len();
        if !(1..=n).contains(&k) {
            return Err(PolicyError::Parse {
                line: 0,
                reason: format!("a quorum of {k} of {n} witnesses is not between 1 and {n}"),
            });
        }
        let members: Vec<&str> = names.iter().map(String::as_str).collect();
        // A name with a space, which no line of a policy file can define.
        b.group("node quorum", &k.to_string(), &members)
            .map_err(|reason| PolicyError::Parse { line: 0, reason })?;
        Ok(Self {
            logs: b.logs,
            witnesses: b.witnesses,
            quorum: Some(Member::Group(0)),
            groups: b.groups,
        })
    }

    /// The policy's logs.
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// The policy's witnesses.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// The quorum rule in words, e.g. `2 of w1, w2, w3`.
    pub fn describe_quorum(&self) -> String {
        match self.quorum {
            None => "none".to_owned(),
            Some(m) => self.describe(m),
        }
    }

    fn describe(&self, m: Member) -> String {
        match m {
            Member::Witness(i) => self.witnesses[i].name.clone(),
            Member::Group(g) => {
                let group = &self.groups[g];
                let inner: Vec<String> = group
                    .members
                    .iter()
                    .map(|&m| match m {
                        Member::Witness(_) => self.describe(m),
                        Member::Group(_) => format!("({})", self.describe(m)),
                    })
                    .collect();
                format!("{} of {}", group.threshold, inner.join(", "))
            }
        }
    }

    /// Whether the witnesses marked in `cosigned` (by index into
    /// [`Policy::witnesses`]) satisfy the quorum.
    pub fn satisfied(&self, cosigned: &[bool]) -> bool {
        match self.quorum {
            None => true,
            Some(m) => self.member_satisfied(m, cosigned),
        }
    }

    fn member_satisfied(&self, m: Member, cosigned: &[bool]) -> bool {
        match m {
            Member::Witness(i) => cosigned.get(i).copied().unwrap_or(false),
            Member::Group(g) => {
                let group = &self.groups[g];
                group
                    .members
                    .iter()
                    .filter(|&&m| self.member_satisfied(m, cosigned))
                    .count()
                    >= group.threshold
            }
        }
    }

    /// The policy's witnesses with a valid cosignature on `note`, as
    /// (index, timestamp). Lines of unknown keys are ignored; a line of a
    /// known witness that does not verify is an error.
    pub fn cosignatures(&self, note: &Note) -> Result<Vec<(usize, u64)>, PolicyError> {
        let mut out = Vec::new();
        for (i, w) in self.witnesses.iter().enumerate() {
            let mut newest = None;
            for sig in note.signatures.iter().filter(|s| w.verifier.claims(s)) {
                let t = w
                    .verifier
                    .verify(&note.text, sig)
                    .map_err(|error| PolicyError::BadCosignature {
                        witness: w.name.clone(),
                        error,
                    })?;
                newest = Some(newest.map_or(t, |n: u64| n.max(t)));
            }
            if let Some(t) = newest {
                out.push((i, t));
            }
        }
        Ok(out)
    }

    /// Checks a checkpoint note against the policy: signed by one of its
    /// logs (or by `log` when it lists none), its known cosignatures valid,
    /// and the quorum reached.
    pub fn check(&self, note: &Note, log: Option<&NoteVerifier>) -> Result<Witnessed, PolicyError> {
        let accepted: Vec<&NoteVerifier> = if self.logs.is_empty() {
            log.into_iter().collect()
        } else {
            self.logs.iter().map(|l| &l.verifier).collect()
        };
        if accepted.is_empty() {
            return Err(PolicyError::NoLog);
        }
        let mut last = None;
        let mut signed = None;
        for verifier in accepted {
            match verifier.verify(note) {
                Ok(text) => {
                    signed = Some((verifier, text));
                    break;
                }
                Err(e @ NoteError::BadSignature(_)) => return Err(PolicyError::Log(e)),
                Err(e) => last = Some(e),
            }
        }
        let Some((verifier, text)) = signed else {
            return Err(PolicyError::Log(last.unwrap_or(NoteError::Unsigned("any log".into()))));
        };
        let checkpoint = Checkpoint::parse(text).map_err(PolicyError::Log)?;
        if checkpoint.origin != verifier.name() {
            return Err(PolicyError::Log(NoteError::Checkpoint(format!(
                "origin {:?} is not the log's key name {:?}",
                checkpoint.origin,
                verifier.name()
            ))));
        }
        let valid = self.cosignatures(note)?;
        let mut cosigned = vec![false; self.witnesses.len()];
        for &(i, _) in &valid {
            cosigned[i] = true;
        }
        let cosigned_by: Vec<(String, u64)> = valid
            .iter()
            .map(|&(i, t)| (self.witnesses[i].name.clone(), t))
            .collect();
        if !self.satisfied(&cosigned) {
            return Err(PolicyError::Quorum {
                valid: cosigned_by.into_iter().map(|(n, _)| n).collect(),
                rule: self.describe_quorum(),
            });
        }
        Ok(Witnessed {
            checkpoint,
            note: note.clone(),
            log: verifier.to_vkey(),
            cosigned_by,
        })
    }

    /// Parses a checkpoint note and [`check`](Policy::check)s it.
    pub fn verify(&self, note: &[u8], log: Option<&NoteVerifier>) -> Result<Witnessed, PolicyError> {
        let note = Note::parse(note).map_err(PolicyError::Log)?;
        self.check(&note, log)
    }
}

/// Accumulates definitions, enforcing tlog-policy's rules as it goes.
#[derive(Debug, Default)]
struct Builder {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    names: HashMap<String, Member>,
    keys: HashSet<[u8; 32]>,
}

impl Builder {
    fn new_key(&mut self, key: &[u8; 32], what: &str) -> Result<(), String> {
        if !self.keys.insert(*key) {
            return Err(format!(
                "{what} repeats a public key listed before (duplicates are not allowed)"
            ));
        }
        Ok(())
    }

    fn log(&mut self, vkey: &str, url: Option<&str>) -> Result<(), String> {
        if self.logs.len() == MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} logs"));
        }
        let verifier = NoteVerifier::parse(vkey).map_err(|e| format!("log key: {e}"))?;
        self.new_key(verifier.key().as_bytes(), "log")?;
        self.logs.push(PolicyLog {
            verifier,
            url: url.map(str::to_owned),
        });
        Ok(())
    }

    fn new_name(&self, name: &str) -> Result<(), String> {
        if name == "none" {
            return Err("`none` is reserved (it names the empty quorum)".into());
        }
        if self.names.contains_key(name) {
            return Err(format!(
                "{name:?} is defined twice (witnesses and groups share one namespace)"
            ));
        }
        Ok(())
    }

    fn witness(&mut self, name: &str, vkey: &str, url: Option<&str>) -> Result<(), String> {
        if self.witnesses.len() == MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} witnesses"));
        }
        self.new_name(name)?;
        let verifier = CosignatureVerifier::parse(vkey).map_err(|e| format!("witness {name}: {e}"))?;
        self.new_key(verifier.key().as_bytes(), &format!("witness {name}"))?;
        self.names
            .insert(name.to_owned(), Member::Witness(self.witnesses.len()));
        self.witnesses.push(PolicyWitness {
            name: name.to_owned(),
            verifier,
            url: url.map(str::to_owned),
        });
        Ok(())
    }

    fn reference(&self, name: &str, allow_none: bool) -> Result<Option<Member>, String> {
        if name == "none" {
            return if allow_none {
                Ok(None)
            } else {
                Err("`none` cannot be a group member".into())
            };
        }
        self.names
            .get(name)
            .copied()
            .map(Some)
            .ok_or_else(|| format!("{name:?} is not a witness or group defined on an earlier line"))
    }

    fn group(&mut self, name: &str, k: &str, members: &[&str]) -> Result<(), String> {
        if self.groups.len() == MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} groups"));
        }
        self.new_name(name)?;
        let mut resolved = Vec::with_capacity(members.len());
        for m in members {
            let member = self.reference(m, false)?.ok_or("`none` cannot be a group member")?;
            if resolved.contains(&member) {
                return Err(format!("group {name} lists {m:?} twice"));
            }
            resolved.push(member);
        }
        let n = resolved.len();
        let threshold = match k {
            "all" => n,
            "any" => 1,
            k => crate::tlog::parse_decimal(k)
                .and_then(|k| usize::try_from(k).ok())
                .filter(|k| (1..=n).contains(k))
                .ok_or_else(|| format!("group {name}: threshold {k:?} is not all, any or a number from 1 to {n}"))?,
        };
        self.names.insert(name.to_owned(), Member::Group(self.groups.len()));
        self.groups.push(Group {
            name: name.to_owned(),
            threshold,
            members: resolved,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::SigningKey;
    use crate::cosignature::Cosigner;

    fn witness(i: u8) -> Cosigner {
        Cosigner::new(&format!("w{i}.example"), SigningKey::from_bytes(&[i; 32])).unwrap()
    }

    fn log_key() -> SigningKey {
        SigningKey::from_bytes(&[100; 32])
    }

    fn log_verifier() -> NoteVerifier {
        NoteVerifier::new("log.example/x", log_key().verifying_key()).unwrap()
    }

    fn note(cosigners: &[u8]) -> Note {
        let cp = Checkpoint {
            origin: "log.example/x".into(),
            size: 3,
            root: [1; 32],
            extensions: vec![],
        };
        let mut note = cp.sign(&log_key()).unwrap();
        for &i in cosigners {
            note.signatures
                .push(witness(i).cosign(&note.text, 1_700_000_000 + u64::from(i)).unwrap());
        }
        note
    }

    /// The example of tlog-policy, with keys filled in: two of X and one of Y.
    fn spec_example() -> String {
        let mut text = format!("# the example of tlog-policy\nlog {}\n\n", log_verifier().to_vkey());
        for i in 1..=3 {
            text.push_str(&format!("witness X{i} {}\n", witness(i).verifier().to_vkey()));
        }
        text.push_str("group X-witnesses 2 X1 X2 X3\n\n");
        for i in 4..=6 {
            text.push_str(&format!(
                "witness Y{} {}\t https://y{i}.example/\n",
                i - 3,
                witness(i).verifier().to_vkey()
            ));
        }
        text.push_str(
            "group Y-witnesses any Y1 Y2 Y3\n\n   group X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n",
        );
        text
    }

    #[test]
    fn tlog_policy_example_quorum() {
        let policy = Policy::parse(spec_example().as_bytes()).unwrap();
        assert_eq!(policy.witnesses().len(), 6);
        assert_eq!(policy.witnesses()[3].url.as_deref(), Some("https://y4.example/"));
        // Two X and one Y: valid, and the cosigners are named.
        let ok = policy.check(&note(&[1, 3, 5]), None).unwrap();
        assert_eq!(
            ok.cosigned_by,
            [
                ("X1".into(), 1_700_000_001),
                ("X3".into(), 1_700_000_003),
                ("Y2".into(), 1_700_000_005)
            ]
        );
        assert_eq!(ok.checkpoint.size, 3);
        assert_eq!(ok.log, log_verifier().to_vkey());
        // Three X, no Y; one X and three Y: not enough.
        for short in [&[1, 2, 3][..], &[2, 4, 5, 6], &[]] {
            let e = policy.check(&note(short), None).unwrap_err();
            assert!(matches!(e, PolicyError::Quorum { .. }), "{short:?}: {e}");
        }
        let e = policy.check(&note(&[2, 4, 5, 6]), None).unwrap_err();
        assert!(e.to_string().contains("valid cosignatures by X2, Y1, Y2, Y3"), "{e}");
    }

    #[test]
    fn unknown_lines_are_ignored_and_bad_known_ones_reject() {
        let policy = Policy::threshold(
            (1..=3)
                .map(|i| PolicyWitness {
                    name: format!("w{i}"),
                    verifier: witness(i).verifier().clone(),
                    url: None,
                })
                .collect(),
            2,
        )
        .unwrap();
        assert_eq!(policy.describe_quorum(), "2 of w1, w2, w3");
        let log = log_verifier();
        // A stranger's cosignature does not count, and does not hurt.
        let mut n = note(&[1, 9]);
        assert!(matches!(policy.check(&n, Some(&log)), Err(PolicyError::Quorum { .. })));
        n.signatures.push(witness(2).cosign(&n.text, 5).unwrap());
        assert_eq!(policy.check(&n, Some(&log)).unwrap().cosigned_by.len(), 2);
        // A known witness's line that fails rejects the note.
        let mut bad = n.clone();
        bad.signatures[1].signature[20] ^= 1;
        let e = policy.check(&bad, Some(&log)).unwrap_err();
        assert!(
            matches!(e, PolicyError::BadCosignature { ref witness, .. } if witness == "w1"),
            "{e}"
        );
        // Without a log, or signed by another log: refused.
        assert_eq!(policy.check(&n, None), Err(PolicyError::NoLog));
        let other = NoteVerifier::new("log.example/x", SigningKey::from_bytes(&[7; 32]).verifying_key()).unwrap();
        assert!(matches!(
            policy.check(&n, Some(&other)),
            Err(PolicyError::Log(NoteError::Unsigned(_)))
        ));
        // The wrong-order arguments of the node's policy are refused.
        assert!(Policy::threshold(vec![], 1).is_err());
        assert!(
            Policy::threshold(
                vec![PolicyWitness {
                    name: "w".into(),
                    verifier: witness(1).verifier().clone(),
                    url: None
                }],
                2
            )
            .is_err()
        );
    }

    #[test]
    fn quorum_none_accepts_a_log_signature_alone() {
        let text = format!("log {}\nquorum none\n", log_verifier().to_vkey());
        let policy = Policy::parse(text.as_bytes()).unwrap();
        assert!(policy.check(&note(&[]), None).unwrap().cosigned_by.is_empty());
        assert_eq!(policy.describe_quorum(), "none");
    }

    #[test]
    fn every_rule_of_the_format_names_its_line() {
        let w1 = witness(1).verifier().to_vkey();
        let w2 = witness(2).verifier().to_vkey();
        let log = log_verifier().to_vkey();
        let cases = [
            (String::new(), 0, "no quorum line"),
            (format!("witness a {w1}\nquorum b\n"), 2, "earlier line"),
            (format!("quorum a\nwitness a {w1}\n"), 1, "earlier line"),
            (
                format!("witness a {w1}\nwitness a {w2}\nquorum a\n"),
                2,
                "defined twice",
            ),
            (
                format!("witness a {w1}\nwitness b {w1}\nquorum a\n"),
                2,
                "repeats a public key",
            ),
            (
                format!("log {log}\nlog {log}\nquorum none\n"),
                2,
                "repeats a public key",
            ),
            (format!("witness none {w1}\nquorum none\n"), 1, "reserved"),
            (format!("witness a {w1}\ngroup g 2 a\nquorum g\n"), 2, "threshold"),
            (format!("witness a {w1}\ngroup g 0 a\nquorum g\n"), 2, "threshold"),
            (format!("witness a {w1}\ngroup g 01 a\nquorum g\n"), 2, "threshold"),
            (format!("witness a {w1}\ngroup g any a a\nquorum g\n"), 2, "twice"),
            (
                format!("witness a {w1}\ngroup g any none\nquorum g\n"),
                2,
                "cannot be a group member",
            ),
            (format!("witness a {w1}\ngroup g any\nquorum g\n"), 2, "wrong number"),
            (format!("witness a {w1}\nquorum a\nquorum a\n"), 3, "second quorum"),
            (format!("witness a {log}\nquorum a\n"), 1, "expected 0x04"),
            (format!("log {w1}\nquorum none\n"), 1, "expected 0x01"),
            (format!("witness a {w1} url extra\nquorum a\n"), 1, "wrong number"),
            ("frobnicate\nquorum none\n".to_owned(), 1, "unknown keyword"),
            ("quorum none\x0b\n".to_owned(), 1, "control character"),
            ("# fine\nquorum\tnone\nX\n".to_owned(), 3, "UTF-8"),
        ];
        for (text, line, why) in cases {
            // The last case: a line of one byte that is not UTF-8.
            let bytes = text.replace("\nX\n", "\n\u{0}\n").into_bytes();
            let bytes: Vec<u8> = bytes.into_iter().map(|b| if b == 0 { 0xff } else { b }).collect();
            match Policy::parse(&bytes) {
                Err(PolicyError::Parse { line: l, reason }) => {
                    assert_eq!(l, line, "{text:?}: {reason}");
                    assert!(reason.contains(why), "{text:?}: {reason}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // Comments, blank lines, tabs and trailing spaces are fine, and a
        // non-UTF-8 comment too.
        let mut bytes = b"  # comment \xe9\n\n".to_vec();
        bytes.extend_from_slice(format!("\twitness a {w1}  \n quorum a\n").as_bytes());
        Policy::parse(&bytes).unwrap();
    }
}
