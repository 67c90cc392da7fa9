//! The text formats of the witness protocol (C2SP `tlog-witness`,
//! `add-checkpoint`; PROTOCOL §10).
//!
//! > The request body MUST be a sequence of an old size line, zero or more
//! > consistency proof lines, and an empty line, followed by a checkpoint.
//! > Each line MUST terminate in a newline character (U+000A). The old size
//! > line MUST consist of the string `old`, a single space (0x20), and the
//! > tree size of the previous checkpoint encoded as an ASCII decimal with
//! > no leading zeroes […]. Each consistency proof line MUST encode a single
//! > hash in base64. The client MUST NOT send more than 63 consistency proof
//! > lines.
//!
//! > (409) The response body MUST consist of the tree size of the latest
//! > cosigned checkpoint in decimal, followed by a newline (U+000A). The
//! > response MUST have a `Content-Type` of `text/x.tlog.size`.
//!
//! > (200) The response body MUST be a sequence of one or more note
//! > signature lines, each starting with the `—` character (U+2014) and
//! > ending with a newline character (U+000A).
//!
//! This module only reads and writes these texts; what a witness decides is
//! in the witness, and what the checkpoint says in [`crate::note`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Hash;
use crate::note::{MAX_NOTE_BYTES, MAX_SIGNATURES, NoteSignature};
use crate::tlog::parse_decimal;

/// Most consistency proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;

/// The `Content-Type` of a 409 answer's body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// The path of the call, after the witness's submission prefix.
pub const ADD_CHECKPOINT_PATH: &str = "/add-checkpoint";

/// Largest request body: 63 proof lines, the old size line and a note.
pub const MAX_REQUEST_BYTES: usize = MAX_NOTE_BYTES + 64 * 46 + 32;

/// A text of the witness protocol that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

fn bad(why: impl Into<String>) -> FormatError {
    FormatError(why.into())
}

/// An `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the witness last cosigned, as the sender
    /// believes (0 if none).
    pub old: u64,
    /// The RFC 6962 consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as its bytes (not parsed here).
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_body(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old).into_bytes();
        for hash in &self.proof {
            out.extend_from_slice(STANDARD.encode(hash).as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Parses a request body. Refuses what the text forbids: a missing or
    /// non-canonical old size line, a proof line that is not one base64
    /// hash, more than 63 of them, no empty line before the checkpoint.
    pub fn parse(body: &[u8]) -> Result<Self, FormatError> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(bad(format!("the request is larger than {MAX_REQUEST_BYTES} bytes")));
        }
        let mut rest = body;
        let mut line = || -> Result<&[u8], FormatError> {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| bad("a line before the checkpoint does not end in a newline"))?;
            let (line, tail) = rest.split_at(end);
            rest = &tail[1..];
            Ok(line)
        };
        let first = line()?;
        let old = std::str::from_utf8(first)
            .ok()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(parse_decimal)
            .ok_or_else(|| bad("the first line is not `old <size>` (a decimal without leading zeros)"))?;
        let mut proof = Vec::new();
        loop {
            let l = line()?;
            if l.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad(format!("more than {MAX_PROOF_LINES} consistency proof lines")));
            }
            let hash = STANDARD
                .decode(l)
                .ok()
                .and_then(|h| Hash::try_from(h.as_slice()).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "consistency proof line {} is not a base64 hash",
                        proof.len() + 1
                    ))
                })?;
            proof.push(hash);
        }
        Ok(Self {
            old,
            proof,
            checkpoint: rest.to_vec(),
        })
    }
}

/// The body of a 409 answer: the size and a newline.
pub fn size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Parses the body of a 409 answer.
pub fn parse_size_body(body: &[u8]) -> Result<u64, FormatError> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.strip_suffix('\n'))
        .and_then(parse_decimal)
        .ok_or_else(|| bad("the 409 body is not a tree size and a newline"))
}

/// The body of a 200 answer: the cosignature lines.
pub fn cosignature_lines(signatures: &[NoteSignature]) -> String {
    let mut out = String::new();
    for sig in signatures {
        out.push_str(&sig.line());
        out.push('\n');
    }
    out
}

/// Parses the body of a 200 answer: one or more signature lines.
pub fn parse_cosignature_lines(body: &[u8]) -> Result<Vec<NoteSignature>, FormatError> {
    if body.len() > MAX_NOTE_BYTES {
        return Err(bad("the answer is larger than a note may be"));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("the answer is not UTF-8"))?;
    let lines = text
        .strip_suffix('\n')
        .ok_or_else(|| bad("the answer does not end in a newline"))?;
    if lines.is_empty() {
        return Err(bad("the answer holds no signature line"));
    }
    let signatures = lines
        .split('\n')
        .map(|l| NoteSignature::parse_line(l).map_err(|e| bad(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if signatures.len() > MAX_SIGNATURES {
        return Err(bad("the answer holds too many signature lines"));
    }
    Ok(signatures)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The example request body of tlog-witness.
    const SPEC_REQUEST: &str = "old 20852014\n\
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
\n\
example.com/behind-the-sofa\n\
20852163\n\
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
\n\
\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
\u{2014} example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";

    /// The example response body of tlog-witness.
    const SPEC_RESPONSE: &str = "\u{2014} witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n\
\u{2014} witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n\
\u{2014} witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n";

    #[test]
    fn tlog_witness_example_request_round_trips() {
        let req = AddCheckpoint::parse(SPEC_REQUEST.as_bytes()).unwrap();
        assert_eq!(req.old, 20_852_014);
        assert_eq!(req.proof.len(), 4);
        assert_eq!(
            STANDARD.encode(req.proof[3]),
            "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0="
        );
        let note = crate::note::Note::parse(&req.checkpoint).unwrap();
        assert_eq!(note.signatures.len(), 2);
        let cp = crate::note::Checkpoint::parse(&note.text).unwrap();
        assert_eq!(
            (cp.origin.as_str(), cp.size),
            ("example.com/behind-the-sofa", 20_852_163)
        );
        assert_eq!(req.to_body(), SPEC_REQUEST.as_bytes());
    }

    #[test]
    fn tlog_witness_example_response_round_trips() {
        let sigs = parse_cosignature_lines(SPEC_RESPONSE.as_bytes()).unwrap();
        assert_eq!(
            sigs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["witness.example/w1", "witness.example/w1", "witness.example/w2"]
        );
        assert_eq!(cosignature_lines(&sigs), SPEC_RESPONSE);
    }

    #[test]
    fn size_bodies() {
        assert_eq!(size_body(0), "0\n");
        assert_eq!(parse_size_body(b"20852014\n"), Ok(20_852_014));
        for bad in [&b"12"[..], b"012\n", b"\n", b"1 \n", b"-1\n", b"18446744073709551616\n"] {
            assert!(parse_size_body(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_requests_are_named() {
        let hash = STANDARD.encode([7u8; 32]);
        let many = format!("old 1\n{}\ncp\n", format!("{hash}\n").repeat(64));
        let cases: &[(&[u8], &str)] = &[
            (b"", "newline"),
            (b"old 1", "newline"),
            (b"new 1\n\ncp\n", "old <size>"),
            (b"old 01\n\ncp\n", "old <size>"),
            (b"old -1\n\ncp\n", "old <size>"),
            (b"old  1\n\ncp\n", "old <size>"),
            (b"old 1\nAAAA\n\ncp\n", "line 1 is not a base64 hash"),
            (b"old 1\nnot base64!\n\ncp\n", "line 1 is not a base64 hash"),
            (b"old 1\n", "newline"),
            (many.as_bytes(), "more than 63"),
        ];
        for (body, why) in cases {
            let e = AddCheckpoint::parse(body).unwrap_err();
            assert!(e.0.contains(why), "{body:?}: {e}");
        }
        // 63 lines are allowed.
        let most = format!("old 1\n{}\ncp\n", format!("{hash}\n").repeat(63));
        assert_eq!(AddCheckpoint::parse(most.as_bytes()).unwrap().proof.len(), 63);
        for bad in [&b""[..], b"\n", b"no dash\n", "\u{2014} w AAAA\n".as_bytes(), b"\xff\n"] {
            assert!(parse_cosignature_lines(bad).is_err(), "{bad:?}");
        }
    }
}
