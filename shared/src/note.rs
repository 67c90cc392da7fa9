//! Signed notes and checkpoints (C2SP `signed-note`, `tlog-checkpoint`;
//! PROTOCOL §9).
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature
//! lines `— <key name> base64(key ID || signature)`. The node signs its
//! checkpoints as Ed25519 notes under the key name = the log's origin; the
//! key ID is `SHA-256(name || "\n" || 0x01 || public key)[:4]`, and the
//! verifier key string is `name+hex(key ID)+base64(0x01 || public key)`.
//!
//! A checkpoint's text is `origin\n`, the decimal tree size `\n`, and the
//! base64 root hash `\n`, possibly followed by extension lines.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Hash;

/// Signature type byte of Ed25519 note signatures.
pub const ED25519_TYPE: u8 = 0x01;

/// Notes larger than this are refused (the signed-note spec asks verifiers
/// for a limit; 16 Ed25519 signatures and a checkpoint fit easily).
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// Most signature lines a note may carry.
pub const MAX_SIGNATURES: usize = 100;

/// Why a note or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not a well-formed signed note.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// A verifier key string that does not parse.
    #[error("malformed verifier key: {0}")]
    BadKey(String),
    /// No signature by the expected key.
    #[error("the note carries no signature by {0}")]
    Unsigned(String),
    /// A signature by the expected key does not verify.
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
    /// The text is not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    Checkpoint(String),
}

/// The key ID of an Ed25519 note key.
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    typed_key_id(name, ED25519_TYPE, key)
}

/// `SHA-256(name || "\n" || signature type || public key)[:4]`, the key ID
/// signed-note recommends (and tlog-cosignature requires, with type 0x04).
pub(crate) fn typed_key_id(name: &str, signature_type: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', signature_type]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Parses a verifier key string `name+hex(key ID)+base64(type || key)` of
/// an Ed25519 key with the given signature type byte, checking its key ID.
pub(crate) fn parse_typed_vkey(vkey: &str, signature_type: u8) -> Result<(String, VerifyingKey), NoteError> {
    let bad = |why: &str| NoteError::BadKey(format!("{vkey:?}: {why}"));
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected name+keyid+key"));
    };
    check_name(name)?;
    let id: [u8; 4] = crate::hexbytes::decode_hex::<4>(id_hex).map_err(|_| bad("key ID is not 8 hex digits"))?;
    let raw = STANDARD.decode(key_b64).map_err(|_| bad("key is not base64"))?;
    let (Some(&found), Ok(bytes)) = (raw.first(), <[u8; 32]>::try_from(raw.get(1..).unwrap_or(&[]))) else {
        return Err(bad(&format!(
            "not an Ed25519 key (signature type 0x{signature_type:02x} and 32 bytes)"
        )));
    };
    if found != signature_type {
        return Err(bad(&format!(
            "signature type 0x{found:02x}, expected 0x{signature_type:02x}{}",
            match signature_type {
                ED25519_TYPE => " (a log's Ed25519 note key)",
                crate::cosignature::COSIGNATURE_TYPE => " (a witness's Ed25519 cosignature/v1 key)",
                _ => "",
            }
        )));
    }
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid Ed25519 public key"))?;
    if typed_key_id(name, signature_type, &key) != id {
        return Err(bad("key ID does not match the name and key"));
    }
    Ok((name.to_owned(), key))
}

/// The verifier key string of an Ed25519 key with this signature type.
pub(crate) fn typed_vkey(name: &str, signature_type: u8, key: &VerifyingKey) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(signature_type);
    raw.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex::encode(typed_key_id(name, signature_type, key)),
        STANDARD.encode(raw)
    )
}

pub(crate) fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control()) {
        return Err(NoteError::BadKey(format!(
            "key name {name:?} must be non-empty, without spaces or '+'"
        )));
    }
    Ok(())
}

/// An Ed25519 note verifier: a key name and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    id: [u8; 4],
}

impl NoteVerifier {
    /// A verifier for `key` under `name`.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            id: key_id(name, &key),
            key,
        })
    }

    /// Parses a verifier key string `name+hex(key ID)+base64(0x01 || key)`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let (name, key) = parse_typed_vkey(vkey, ED25519_TYPE)?;
        Self::new(&name, key)
    }

    /// The verifier key string.
    pub fn to_vkey(&self) -> String {
        typed_vkey(&self.name, ED25519_TYPE, &self.key)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    /// The public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Checks that `note` carries a valid signature by this key and returns
    /// its text. Signatures by other keys are ignored, as the spec says; a
    /// signature line with this name and key ID that fails to verify
    /// rejects the note.
    pub fn verify<'a>(&self, note: &'a Note) -> Result<&'a str, NoteError> {
        let mut verified = false;
        for sig in note
            .signatures
            .iter()
            .filter(|s| s.name == self.name && s.id == self.id)
        {
            let signature = <[u8; 64]>::try_from(sig.signature.as_slice())
                .map(|b| Signature::from_bytes(&b))
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            self.key
                .verify_strict(note.text.as_bytes(), &signature)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            verified = true;
        }
        if verified {
            Ok(&note.text)
        } else {
            Err(NoteError::Unsigned(self.name.clone()))
        }
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key ID.
    pub id: [u8; 4],
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// Parses one signature line (without its newline):
    /// `— <key name> base64(key ID || signature)`.
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Malformed(why.to_owned());
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| bad("a signature line does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("a signature line has no signature"))?;
        check_name(name).map_err(|_| bad("a signature line has a bad key name"))?;
        let raw = STANDARD.decode(b64).map_err(|_| bad("a signature is not base64"))?;
        if raw.len() < 5 {
            return Err(bad("a signature is shorter than its key ID"));
        }
        Ok(Self {
            name: name.to_owned(),
            id: [raw[0], raw[1], raw[2], raw[3]],
            signature: raw[4..].to_vec(),
        })
    }

    /// The line, without its newline.
    pub fn line(&self) -> String {
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(&self.signature);
        format!("\u{2014} {} {}", self.name, STANDARD.encode(raw))
    }
}

/// A signed note: its text (with the final newline) and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Signs `text` (which must end in a newline and contain no control
    /// character but newline) with `key` under `name`.
    pub fn sign(text: &str, name: &str, key: &SigningKey) -> Result<Self, NoteError> {
        check_text(text)?;
        check_name(name)?;
        let signature = key.sign(text.as_bytes());
        Ok(Self {
            text: text.to_owned(),
            signatures: vec![NoteSignature {
                name: name.to_owned(),
                id: key_id(name, &key.verifying_key()),
                signature: signature.to_bytes().to_vec(),
            }],
        })
    }

    /// Parses a signed note.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Malformed(why.to_owned());
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(bad("larger than 64 KiB"));
        }
        let all = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        if all.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(bad("contains a control character"));
        }
        // The text ends at the last blank line.
        let split = all
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = &all[..=split];
        let sigs = &all[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(bad("the signature block does not end in a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            signatures.push(NoteSignature::parse_line(line)?);
            if signatures.len() > MAX_SIGNATURES {
                return Err(bad("too many signatures"));
            }
        }
        if signatures.is_empty() {
            return Err(bad("no signature lines"));
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note as served: text, blank line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for sig in &self.signatures {
            out.push_str(&sig.line());
            out.push('\n');
        }
        out
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text must end in a newline".into()));
    }
    if text.chars().any(|c| c.is_ascii_control() && c != '\n') {
        return Err(NoteError::Malformed("the text contains a control character".into()));
    }
    Ok(())
}

/// A checkpoint's body (tlog-checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The RFC 6962 root hash of the first `size` entries.
    pub root: Hash,
    /// Extension lines, if any (each without its newline).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for line in &self.extensions {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// Parses a checkpoint's note text.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Checkpoint(why.to_owned());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("does not end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size_line = lines.next().ok_or_else(|| bad("no tree size line"))?;
        let size = crate::tlog::parse_decimal(size_line)
            .ok_or_else(|| bad("the tree size is not a decimal number (without leading zeros, below 2^64)"))?;
        let root_line = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root = STANDARD
            .decode(root_line)
            .ok()
            .and_then(|r| <Hash>::try_from(r.as_slice()).ok())
            .ok_or_else(|| bad("the root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Signs this checkpoint as a note under the key name = origin.
    pub fn sign(&self, key: &SigningKey) -> Result<Note, NoteError> {
        Note::sign(&self.to_text(), &self.origin, key)
    }

    /// Parses and verifies a signed checkpoint with the log's verifier.
    pub fn verify(note_bytes: &[u8], log: &NoteVerifier) -> Result<(Self, Note), NoteError> {
        let note = Note::parse(note_bytes)?;
        let text = log.verify(&note)?;
        let checkpoint = Self::parse(text)?;
        if checkpoint.origin != log.name() {
            return Err(NoteError::Checkpoint(format!(
                "origin {:?} is not the log's key name {:?}",
                checkpoint.origin,
                log.name()
            )));
        }
        Ok((checkpoint, note))
    }
}

/// The default origin of a node (PROTOCOL §9): `sealchain.local/` and the
/// first 16 hex characters of its signing key.
pub fn default_origin(key: &VerifyingKey) -> String {
    format!("sealchain.local/{}", &hex::encode(key.as_bytes())[..16])
}

/// Checks an origin given by an operator: a schema-less URL usable as a
/// note key name.
pub fn check_origin(origin: &str) -> Result<(), NoteError> {
    check_name(origin)?;
    if origin.contains("://") {
        return Err(NoteError::BadKey(format!("origin {origin:?} must not have a scheme")));
    }
    if !origin.is_ascii() || origin.ends_with('/') {
        return Err(NoteError::BadKey(format!(
            "origin {origin:?} must be ASCII, without a trailing slash"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The example of the signed-note specification (C2SP), with the
    /// verifier key the Go `note` package documents for it.
    const SPEC_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const SPEC_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
then you don't know what your problem is.\n\
\n\
\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn the_go_note_example_verifies() {
        let verifier = NoteVerifier::parse(SPEC_VKEY).unwrap();
        assert_eq!(verifier.to_vkey(), SPEC_VKEY);
        let note = Note::parse(SPEC_NOTE.as_bytes()).unwrap();
        assert_eq!(note.to_text(), SPEC_NOTE);
        assert!(verifier.verify(&note).unwrap().starts_with("If you think"));
        // One changed byte of text fails.
        let mut tampered = note.clone();
        tampered.text = tampered.text.replace("answer", "Answer");
        assert_eq!(
            verifier.verify(&tampered),
            Err(NoteError::BadSignature("PeterNeumann".into()))
        );
    }

    #[test]
    fn checkpoints_round_trip_and_verify() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let origin = default_origin(&key.verifying_key());
        let cp = Checkpoint {
            origin: origin.clone(),
            size: 1234,
            root: [9; 32],
            extensions: vec![],
        };
        let note = cp.sign(&key).unwrap();
        let verifier = NoteVerifier::new(&origin, key.verifying_key()).unwrap();
        let served = note.to_text();
        let (back, _) = Checkpoint::verify(served.as_bytes(), &verifier).unwrap();
        assert_eq!(back, cp);
        assert!(served.starts_with(&format!("{origin}\n1234\n")));
        // Another key with the same name is ignored, so the note is unsigned for it.
        let other = NoteVerifier::new(&origin, SigningKey::from_bytes(&[8; 32]).verifying_key()).unwrap();
        assert!(matches!(
            Checkpoint::verify(served.as_bytes(), &other),
            Err(NoteError::Unsigned(_))
        ));
        let parsed = NoteVerifier::parse(&verifier.to_vkey()).unwrap();
        assert_eq!(parsed, verifier);
    }

    #[test]
    fn malformed_notes_and_checkpoints_are_refused() {
        for bad in [
            "no blank line\n\u{2014} a AAAAAAA=\n",
            "text\n\n",
            "text\n\nnot a signature\n",
            "text\n\n\u{2014} a !!!\n",
            "text\n\n\u{2014} a AAAA\n",
            "te\u{1}xt\n\n\u{2014} a AAAAAAA=\n",
            "text\n\n\u{2014} a AAAAAAA=",
        ] {
            assert!(Note::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        for bad in [
            "origin\n12\n",
            "origin\n012\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            "origin\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            "origin\n1\nAAAA\n",
            "\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            "origin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "a b", "a+b", "https://x/y", "x/y/"] {
            assert!(check_origin(bad).is_err(), "{bad:?}");
        }
        check_origin("log.example.com/sealchain").unwrap();
        for bad in [
            "a+b",
            "a+c74f20a3",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(NoteVerifier::parse(bad).is_err(), "{bad:?}");
        }
    }
}
