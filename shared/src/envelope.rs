//! The envelope (PROTOCOL §3): what travels from a client to the node.
//!
//! > `POST /v1/messages`, `Content-Type: application/json`:
//! > `{ "enc": "<hex, 32 bytes>", "ct": "<base64>" }` — the output of an
//! > RFC 9180 HPKE single-shot `Seal` in base mode … where `pkR` = the node's
//! > X25519 public key, `info` = `"sealchain/envelope/v1"`, `aad` = empty,
//! > `pt` = `signed_message`.
//!
//! Parsing the JSON ([`Envelope::from_json`]) and opening it
//! ([`Envelope::open`]) are separate steps because the node answers them
//! with different codes (`malformed_envelope`, `decryption_failed`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use x25519_dalek::PublicKey;
use zeroize::Zeroizing;

use crate::hexbytes::decode_hex;
use crate::hpke::{self, ENC_LEN, HpkeError};
use crate::keys::EncryptionKey;

/// HPKE `info` of every envelope.
pub const ENVELOPE_INFO: &[u8] = b"sealchain/envelope/v1";

/// A sealed `signed_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sender's ephemeral X25519 public key.
    pub enc: [u8; ENC_LEN],
    /// ChaCha20Poly1305 ciphertext and tag.
    pub ct: Vec<u8>,
}

/// The wire form. Unknown and duplicate members are refused.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Envelope))]
pub struct EnvelopeJson {
    /// The HPKE `enc` (ephemeral public key): 64 lowercase hex characters.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{64}$"))]
    pub enc: String,
    /// The HPKE ciphertext, standard base64 with padding.
    pub ct: String,
}

/// Why a request body is not an envelope (`400 malformed_envelope`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON, or not an object with exactly `enc` and `ct` as strings.
    #[error("envelope must be a JSON object with exactly the string members \"enc\" and \"ct\": {0}")]
    Shape(String),
    /// `enc` is not 64 lowercase hex characters.
    #[error("`enc` must be 32 bytes as 64 lowercase hex characters: {0}")]
    Enc(String),
    /// `ct` is not standard padded base64.
    #[error("`ct` must be standard base64 with padding: {0}")]
    Ct(String),
}

impl Envelope {
    /// Seals `signed_message` to the node's X25519 public key.
    pub fn seal(node_encryption_key: &PublicKey, signed_message: &[u8]) -> Result<Self, HpkeError> {
        let (enc, ct) = hpke::seal_base(node_encryption_key, ENVELOPE_INFO, b"", signed_message)?;
        Ok(Self { enc, ct })
    }

    /// Opens the envelope with the node's X25519 secret key. Every failure
    /// is the same [`HpkeError::Open`].
    pub fn open(&self, key: &EncryptionKey) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
        hpke::open_base(key.secret(), &key.public_key(), &self.enc, ENVELOPE_INFO, b"", &self.ct)
    }

    /// Parses the JSON request body.
    pub fn from_json(body: &[u8]) -> Result<Self, EnvelopeError> {
        let json: EnvelopeJson = serde_json::from_slice(body).map_err(|e| EnvelopeError::Shape(e.to_string()))?;
        Self::try_from(&json)
    }

    /// The JSON request body.
    pub fn to_json(&self) -> String {
        // Serializing two strings cannot fail.
        serde_json::to_string(&EnvelopeJson::from(self)).unwrap_or_default()
    }
}

impl TryFrom<&EnvelopeJson> for Envelope {
    type Error = EnvelopeError;
    fn try_from(json: &EnvelopeJson) -> Result<Self, EnvelopeError> {
        let enc = decode_hex::<ENC_LEN>(&json.enc).map_err(|e| EnvelopeError::Enc(e.to_string()))?;
        let ct = STANDARD
            .decode(&json.ct)
            .map_err(|e| EnvelopeError::Ct(e.to_string()))?;
        Ok(Self { enc, ct })
    }
}

impl From<&Envelope> for EnvelopeJson {
    fn from(envelope: &Envelope) -> Self {
        Self {
            enc: hex::encode(envelope.enc),
            ct: STANDARD.encode(&envelope.ct),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let key = EncryptionKey::from_bytes([3; 32]);
        let env = Envelope::seal(&key.public_key(), &[7u8; 80]).unwrap();
        let back = Envelope::from_json(env.to_json().as_bytes()).unwrap();
        assert_eq!(back, env);
        assert_eq!(&back.open(&key).unwrap()[..], &[7u8; 80][..]);
    }

    type Check = fn(&EnvelopeError) -> bool;

    #[test]
    fn malformed_bodies_are_named() {
        let enc = "11".repeat(32);
        let cases: Vec<(String, Check)> = vec![
            ("not json".into(), |e| matches!(e, EnvelopeError::Shape(_))),
            ("[]".into(), |e| matches!(e, EnvelopeError::Shape(_))),
            (format!(r#"{{"enc":"{enc}"}}"#), |e| {
                matches!(e, EnvelopeError::Shape(_))
            }),
            (format!(r#"{{"enc":"{enc}","ct":"AAAA","x":1}}"#), |e| {
                matches!(e, EnvelopeError::Shape(_))
            }),
            (format!(r#"{{"enc":"{enc}","ct":"AAAA","ct":"AAAA"}}"#), |e| {
                matches!(e, EnvelopeError::Shape(_))
            }),
            (r#"{"enc":"11","ct":"AAAA"}"#.into(), |e| {
                matches!(e, EnvelopeError::Enc(_))
            }),
            (
                format!(r#"{{"enc":"{}","ct":"AAAA"}}"#, enc.to_uppercase().replace('1', "A")),
                |e| matches!(e, EnvelopeError::Enc(_)),
            ),
            (format!(r#"{{"enc":"{enc}","ct":"AAA"}}"#), |e| {
                matches!(e, EnvelopeError::Ct(_))
            }),
            (format!(r#"{{"enc":"{enc}","ct":"AA-_"}}"#), |e| {
                matches!(e, EnvelopeError::Ct(_))
            }),
            (format!(r#"{{"enc":"{enc}","ct":1}}"#), |e| {
                matches!(e, EnvelopeError::Shape(_))
            }),
        ];
        for (body, check) in cases {
            let err = Envelope::from_json(body.as_bytes()).unwrap_err();
            assert!(check(&err), "{body}: {err}");
        }
    }
}
