//! The checks of PROTOCOL §4 that need no database, in the protocol's
//! order: envelope shape, HPKE open, message schema, node binding,
//! signature; and, after the allowlist (which needs the database), the
//! clock skew.

use std::time::Duration;

use sealchain_shared::Hash;
use sealchain_shared::envelope::Envelope;
use sealchain_shared::keys::EncryptionKey;
use sealchain_shared::message::{self, Message, SignatureError, SignedMessage};

use super::Rejection;

/// A message that passed every check but the allowlist, skew and duplicate
/// checks.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Sender's Ed25519 public key.
    pub sender: [u8; 32],
    /// The message nonce.
    pub nonce: [u8; 16],
    /// The client's clock.
    pub ts: i64,
    /// The client's signature.
    pub signature: [u8; 64],
    /// `message_bytes`.
    pub message_bytes: Vec<u8>,
    /// `SHA256(0x00 || signature || message_bytes)`.
    pub leaf_hash: Hash,
}

/// Opens and checks an envelope body.
pub fn open_and_verify(
    body: &[u8],
    encryption_key: &EncryptionKey,
    node_key: &[u8; 32],
    max_message_bytes: usize,
) -> Result<Verified, Rejection> {
    let envelope = Envelope::from_json(body).map_err(|e| Rejection::MalformedEnvelope(e.to_string()))?;
    let plaintext = envelope.open(encryption_key).map_err(|_| Rejection::DecryptionFailed)?;
    let invalid = |e: message::MessageError| Rejection::InvalidMessage(e.to_string());
    let signed = SignedMessage::from_bytes(&plaintext).map_err(invalid)?;
    let parsed = Message::parse(&signed.message_bytes, max_message_bytes).map_err(invalid)?;
    if parsed.node != *node_key {
        return Err(Rejection::WrongNode);
    }
    message::verify_cached(&parsed.sender, &signed.message_bytes, &signed.signature).map_err(|e| match e {
        SignatureError::BadSenderKey => {
            Rejection::InvalidSignature("sender is not a valid Ed25519 public key, so no signature can verify".into())
        }
        SignatureError::Invalid => Rejection::InvalidSignature("the signature does not verify under sender".into()),
    })?;
    let leaf_hash = signed.leaf_hash();
    Ok(Verified {
        sender: parsed.sender,
        nonce: parsed.nonce,
        ts: parsed.ts,
        signature: signed.signature,
        message_bytes: signed.message_bytes,
        leaf_hash,
    })
}

/// `ts` must be within `now ± max_skew`.
pub fn check_skew(ts: i64, now: i64, max_skew: Duration) -> Result<(), Rejection> {
    let max_ms = super::millis(max_skew);
    let skew_ms = ts.saturating_sub(now);
    if skew_ms.unsigned_abs() > max_ms {
        return Err(Rejection::StaleTimestamp { skew_ms, max_ms });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_bounds_are_inclusive() {
        let d = Duration::from_secs(300);
        assert!(check_skew(1_000_000, 1_000_000, d).is_ok());
        assert!(check_skew(1_300_000, 1_000_000, d).is_ok());
        assert!(check_skew(700_000, 1_000_000, d).is_ok());
        assert!(check_skew(1_300_001, 1_000_000, d).is_err());
        assert!(check_skew(699_999, 1_000_000, d).is_err());
        assert!(check_skew(i64::MIN, i64::MAX, d).is_err());
    }
}
