//! The client side of one message: build, sign, seal (PROTOCOL §2–§3), and
//! check the receipt that comes back (§4).

use anyhow::{Context, bail};
use sealchain_shared::api::Receipt;
use sealchain_shared::audit;
use sealchain_shared::envelope::Envelope;
use sealchain_shared::message::MessageBuilder;
use sealchain_shared::{EncryptionPublicKey, Hash, SigningKey};

use crate::connect::Node;

/// A sealed message ready to post.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The envelope's JSON, the body of `POST /v1/messages`.
    pub envelope_json: Vec<u8>,
    /// The leaf hash the receipt must name.
    pub leaf_hash: Hash,
    /// `signature || message_bytes`: the log's entry (PROTOCOL §9).
    pub signed_message: Vec<u8>,
}

/// Builds a message to `node` from `key`, signs it and seals it.
pub fn seal(node: &Node, key: &SigningKey, topic: &str, body: &serde_json::Value) -> anyhow::Result<Sealed> {
    seal_to(&node.info.signing_key.0, &node.encryption_key, key, topic, body)
}

/// Like [`seal`], from the node's two public keys alone (usable off the
/// thread that holds the HTTP client).
pub fn seal_to(
    node_signing_key: &[u8; 32],
    node_encryption_key: &EncryptionPublicKey,
    key: &SigningKey,
    topic: &str,
    body: &serde_json::Value,
) -> anyhow::Result<Sealed> {
    let signed = MessageBuilder::new(*node_signing_key, topic, body)
        .context("building the message")?
        .sign(key)
        .context("signing the message")?;
    let signed_message = signed.to_bytes();
    let envelope = Envelope::seal(node_encryption_key, &signed_message).context("sealing the envelope")?;
    Ok(Sealed {
        envelope_json: envelope.to_json().into_bytes(),
        leaf_hash: signed.leaf_hash(),
        signed_message,
    })
}

/// Checks a receipt: the node's signature (under the pinned key), its block
/// index, and that it names the message that was sent.
pub fn check_receipt(node: &Node, receipt: &Receipt, sent_leaf_hash: &Hash) -> anyhow::Result<()> {
    audit::verify_receipt(receipt, &node.signing_key, node.info.block_size).context("the node's receipt is invalid")?;
    if receipt.leaf_hash.0 != *sent_leaf_hash {
        bail!(
            "the node's receipt for seq {} names leaf hash {}, but the message sent has leaf hash {}",
            receipt.seq,
            receipt.leaf_hash,
            hex::encode(sent_leaf_hash)
        );
    }
    Ok(())
}
