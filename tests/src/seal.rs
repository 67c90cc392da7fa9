//! Building messages and envelopes the way a client does — and the broken
//! ones the validation tests need.

use sealchain_shared::api::NodeInfo;
use sealchain_shared::envelope::Envelope;
use sealchain_shared::message::{self, MessageBuilder, SignedMessage};
use sealchain_shared::{EncryptionPublicKey as PublicKey, SigningKey, keys};

/// Re-export for tests that seal to other keys.
pub use sealchain_shared::keys::EncryptionKey;

/// A fresh client identity.
pub fn identity() -> SigningKey {
    keys::generate_signing_key().unwrap()
}

/// The node's X25519 key from its info.
pub fn node_encryption_key(info: &NodeInfo) -> PublicKey {
    PublicKey::from(info.encryption_key.0)
}

/// A signed message for the node, with a random nonce and the current time.
pub fn signed(client: &SigningKey, info: &NodeInfo, topic: &str, body: serde_json::Value) -> SignedMessage {
    MessageBuilder::new(info.signing_key.0, topic, &body)
        .unwrap()
        .sign(client)
        .unwrap()
}

/// Seals any plaintext to the node.
pub fn seal_bytes(info: &NodeInfo, plaintext: &[u8]) -> Envelope {
    Envelope::seal(&node_encryption_key(info), plaintext).unwrap()
}

/// A valid envelope for the node.
pub fn envelope(client: &SigningKey, info: &NodeInfo, topic: &str, body: serde_json::Value) -> Envelope {
    seal_bytes(info, &signed(client, info, topic, body).to_bytes())
}

/// Signs arbitrary message bytes (valid or not) and seals them.
pub fn seal_message_bytes(client: &SigningKey, info: &NodeInfo, message_bytes: &[u8]) -> Envelope {
    let signed = SignedMessage {
        signature: message::sign(client, message_bytes).to_bytes(),
        message_bytes: message_bytes.to_vec(),
    };
    seal_bytes(info, &signed.to_bytes())
}
