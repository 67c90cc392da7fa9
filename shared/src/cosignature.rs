//! Witness cosignatures (C2SP `tlog-cosignature`, the Ed25519
//! `cosignature/v1` type; PROTOCOL §10).
//!
//! > Concretely, a cosignature is a note signature applied to a checkpoint.
//! > The key ID for Ed25519 cosignatures MUST be computed as
//! > `SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 cosigner public key)[:4]`
//! > […] The signature MUST be a `timestamped_signature` structure
//! > (`u64 timestamp` big-endian, then the 64-byte Ed25519 signature).
//! > […] The signed message MUST be two newline terminated lines (one
//! > header line and one timestamp line) followed by the whole note body of
//! > the cosigned checkpoint: `cosignature/v1`, `time <timestamp>`.
//! > `timestamp` […] MUST NOT exceed 2^63 - 1.
//!
//! So a cosignature line is `— <witness name> base64(key ID || u64be(time)
//! || signature)`, and a witness's verifier key is
//! `name+hex(key ID)+base64(0x04 || public key)`. The timestamp is POSIX
//! seconds.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::note::{NoteError, NoteSignature, check_name, parse_typed_vkey, typed_key_id, typed_vkey};

/// Signature type byte of timestamped Ed25519 witness cosignatures
/// (signed-note's table; tlog-cosignature).
pub const COSIGNATURE_TYPE: u8 = 0x04;

/// The header line of the signed message (without its newline).
pub const HEADER: &str = "cosignature/v1";

/// The largest timestamp a cosignature may carry (2^63 − 1).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Bytes after the key ID: the timestamp and the Ed25519 signature.
const BODY_LEN: usize = 8 + 64;

/// Why a cosignature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// A witness verifier key, name or signature line that does not parse.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// Not `8 + 64` bytes after the key ID.
    #[error("the cosignature by {0} is not a timestamped Ed25519 signature (72 bytes after the key ID)")]
    Length(String),
    /// A timestamp above 2^63 − 1.
    #[error("the cosignature by {0} has a timestamp above 2^63 - 1")]
    Timestamp(String),
    /// The Ed25519 signature does not verify over the signed message.
    #[error("the cosignature by {0} does not verify")]
    Invalid(String),
}

/// The message a `cosignature/v1` signs: `cosignature/v1\n`,
/// `time <timestamp>\n`, then the checkpoint's note text (with its final
/// newline, without signature lines).
pub fn signed_message(timestamp: u64, checkpoint_text: &str) -> Vec<u8> {
    let mut out = format!("{HEADER}\ntime {timestamp}\n").into_bytes();
    out.extend_from_slice(checkpoint_text.as_bytes());
    out
}

/// A witness's public key and name: checks its cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key: VerifyingKey,
    id: [u8; 4],
}

impl CosignatureVerifier {
    /// A verifier for `key` under `name`.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, CosignatureError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            id: typed_key_id(name, COSIGNATURE_TYPE, &key),
            key,
        })
    }

    /// Parses a witness verifier key `name+hex(key ID)+base64(0x04 || key)`.
    pub fn parse(vkey: &str) -> Result<Self, CosignatureError> {
        let (name, key) = parse_typed_vkey(vkey, COSIGNATURE_TYPE)?;
        Self::new(&name, key)
    }

    /// The verifier key string.
    pub fn to_vkey(&self) -> String {
        typed_vkey(&self.name, COSIGNATURE_TYPE, &self.key)
    }

    /// The witness's key name.
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

    /// Whether a signature line claims to be by this key (same name and
    /// key ID). Lines that do not are ignored, as signed-note says.
    pub fn claims(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.id == self.id
    }

    /// Checks a signature line of this key over `checkpoint_text`; returns
    /// its timestamp.
    pub fn verify(&self, checkpoint_text: &str, sig: &NoteSignature) -> Result<u64, CosignatureError> {
        if !self.claims(sig) {
            return Err(NoteError::Unsigned(self.name.clone()).into());
        }
        let body: &[u8; BODY_LEN] = sig
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| CosignatureError::Length(self.name.clone()))?;
        let (time, signature) = body.split_at(8);
        let timestamp = u64::from_be_bytes(
            time.try_into()
                .map_err(|_| CosignatureError::Length(self.name.clone()))?,
        );
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::Timestamp(self.name.clone()));
        }
        let signature = Signature::from_slice(signature).map_err(|_| CosignatureError::Length(self.name.clone()))?;
        self.key
            .verify_strict(&signed_message(timestamp, checkpoint_text), &signature)
            .map_err(|_| CosignatureError::Invalid(self.name.clone()))?;
        Ok(timestamp)
    }
}

/// A witness's signing key and name: makes cosignatures.
pub struct Cosigner {
    key: SigningKey,
    verifier: CosignatureVerifier,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cosigner")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl Cosigner {
    /// A cosigner signing with `key` under `name`.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, CosignatureError> {
        let verifier = CosignatureVerifier::new(name, key.verifying_key())?;
        Ok(Self { key, verifier })
    }

    /// Its public half.
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// Cosigns a checkpoint's note text at `timestamp` (POSIX seconds).
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> Result<NoteSignature, CosignatureError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::Timestamp(self.verifier.name.clone()));
        }
        let signature = self.key.sign(&signed_message(timestamp, checkpoint_text));
        let mut body = Vec::with_capacity(BODY_LEN);
        body.extend_from_slice(&timestamp.to_be_bytes());
        body.extend_from_slice(&signature.to_bytes());
        Ok(NoteSignature {
            name: self.verifier.name.clone(),
            id: self.verifier.id,
            signature: body,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::note::{Checkpoint, Note};

    /// The example checkpoint of tlog-cosignature, its cosignature line and
    /// the signed message the text spells out for it.
    const SPEC_TEXT: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    const SPEC_LINE: &str = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==";

    #[test]
    fn tlog_cosignature_example_line_and_signed_message() {
        let sig = NoteSignature::parse_line(SPEC_LINE).unwrap();
        assert_eq!(sig.name, "witness.example.com/w1");
        assert_eq!(sig.id, [0x8d, 0x66, 0xcf, 0x3f]);
        assert_eq!(sig.signature.len(), 72);
        // The timestamp of the example is the one its signed message shows.
        let timestamp = u64::from_be_bytes(sig.signature[..8].try_into().unwrap());
        assert_eq!(timestamp, 1_679_315_147);
        assert_eq!(
            signed_message(timestamp, SPEC_TEXT),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
        assert_eq!(sig.line(), SPEC_LINE);
    }

    #[test]
    fn key_ids_use_signature_type_0x04() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let v = CosignatureVerifier::new("witness.example/w1", key.verifying_key()).unwrap();
        // Independent of the note code: SHA-256(name || \n || 0x04 || key)[:4].
        use sha2::Digest;
        let mut input = b"witness.example/w1\n\x04".to_vec();
        input.extend_from_slice(key.verifying_key().as_bytes());
        assert_eq!(v.id(), sha2::Sha256::digest(&input)[..4]);
        assert_ne!(v.id(), crate::note::key_id("witness.example/w1", &key.verifying_key()));
        let vkey = v.to_vkey();
        let (prefix, key_b64) = vkey.rsplit_once('+').unwrap();
        assert_eq!(prefix, format!("witness.example/w1+{}", hex::encode(v.id())));
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD.decode(key_b64).unwrap();
        assert_eq!((raw[0], &raw[1..]), (0x04, &key.verifying_key().as_bytes()[..]));
        assert_eq!(CosignatureVerifier::parse(&vkey).unwrap(), v);
        // A log's (0x01) vkey is not a witness key, and the other way round.
        let log = crate::note::NoteVerifier::new("log.example/x", key.verifying_key()).unwrap();
        let e = CosignatureVerifier::parse(&log.to_vkey()).unwrap_err();
        assert!(e.to_string().contains("expected 0x04"), "{e}");
        assert!(crate::note::NoteVerifier::parse(&vkey).is_err());
    }

    #[test]
    fn cosign_then_verify_and_tamper() {
        let log_key = SigningKey::from_bytes(&[1; 32]);
        let cp = Checkpoint {
            origin: "log.example/x".into(),
            size: 10,
            root: [5; 32],
            extensions: vec![],
        };
        let note = cp.sign(&log_key).unwrap();
        let witness = Cosigner::new("witness.example/w1", SigningKey::from_bytes(&[2; 32])).unwrap();
        let sig = witness.cosign(&note.text, 1_700_000_000).unwrap();
        assert_eq!(witness.verifier().verify(&note.text, &sig).unwrap(), 1_700_000_000);
        // The line round-trips through a note with both signatures.
        let mut both = note.clone();
        both.signatures.push(sig.clone());
        let parsed = Note::parse(both.to_text().as_bytes()).unwrap();
        assert_eq!(parsed.signatures[1], sig);
        // Another text, another time, a flipped bit, a short body: refused.
        assert!(matches!(
            witness.verifier().verify(&note.text.replace("10", "11"), &sig),
            Err(CosignatureError::Invalid(_))
        ));
        let mut later = sig.clone();
        later.signature[7] ^= 1;
        assert!(matches!(
            witness.verifier().verify(&note.text, &later),
            Err(CosignatureError::Invalid(_))
        ));
        let mut short = sig.clone();
        short.signature.pop();
        assert!(matches!(
            witness.verifier().verify(&note.text, &short),
            Err(CosignatureError::Length(_))
        ));
        let mut huge = sig.clone();
        huge.signature[0] = 0x80;
        assert!(matches!(
            witness.verifier().verify(&note.text, &huge),
            Err(CosignatureError::Timestamp(_))
        ));
        assert!(witness.cosign(&note.text, MAX_TIMESTAMP + 1).is_err());
        // A line of another key is not this witness's.
        let other = Cosigner::new("witness.example/w1", SigningKey::from_bytes(&[4; 32])).unwrap();
        assert!(!other.verifier().claims(&sig));
        assert!(other.verifier().verify(&note.text, &sig).is_err());
    }
}
