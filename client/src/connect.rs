//! First contact with a node: fetch `GET /v1/node`, check it speaks this
//! protocol, and check its keys against the pin.

use anyhow::{Context, bail};
use sealchain_shared::api::{BlockSummary, NodeInfo};
use sealchain_shared::{EncryptionPublicKey, PROTOCOL, VerifyingKey};

use crate::api::{ApiError, NodeClient};
use crate::global::Global;
use crate::pin::{PinPolicy, PinStatus};

/// A node whose keys passed the pin check.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its API.
    pub client: NodeClient,
    /// What it says about itself.
    pub info: NodeInfo,
    /// Its signing key: the key blocks and receipts are verified against.
    pub signing_key: VerifyingKey,
    /// Its X25519 key: the key envelopes are sealed to.
    pub encryption_key: EncryptionPublicKey,
    /// How its keys were checked.
    pub pin: PinStatus,
}

impl Node {
    /// The chain's block size as `u64`.
    pub fn block_size(&self) -> u64 {
        u64::from(self.info.block_size)
    }

    /// The header of sealed block `index` (not yet verified).
    pub async fn header(&self, index: u64) -> anyhow::Result<BlockSummary> {
        self.client
            .block_header(index)
            .await
            .with_context(|| format!("fetching the header of block {index}"))?
            .ok_or_else(|| anyhow::anyhow!("block {index} is not sealed"))
    }
}

/// The pin policy the global options ask for.
pub fn pin_policy(global: &Global) -> anyhow::Result<PinPolicy> {
    Ok(PinPolicy {
        node_key: global.node_key,
        file: if global.no_pin {
            None
        } else {
            Some(global.known_nodes_file()?)
        },
    })
}

/// The retry policy of `--retries`.
pub fn retry_policy(global: &Global) -> crate::api::RetryPolicy {
    crate::api::RetryPolicy {
        attempts: global.retries.saturating_add(1),
        ..crate::api::RetryPolicy::default()
    }
}

/// A client for `--node` with up to `connections` concurrent connections.
pub fn client(global: &Global, connections: usize) -> anyhow::Result<NodeClient> {
    if !(global.node.starts_with("http://") || global.node.starts_with("https://")) {
        bail!("--node {:?} must start with http:// or https://", global.node);
    }
    match &global.ca_cert {
        None => Ok(NodeClient::new(&global.node, global.timeout, connections)),
        Some(file) => {
            let pem = std::fs::read(file).with_context(|| format!("reading --ca-cert {}", file.display()))?;
            NodeClient::with_ca(&global.node, global.timeout, connections, &pem)
                .map_err(|e| anyhow::anyhow!("--ca-cert {}: {e}", file.display()))
        }
    }
}

/// Contacts the node and checks its keys.
pub async fn connect(global: &Global, connections: usize) -> anyhow::Result<Node> {
    let client = client(global, connections)?;
    let info = client.node_info().await.map_err(|e| match e {
        ApiError::Unreachable { .. } => {
            anyhow::anyhow!("{e} (is the node running? its URL is set with --node or SEALCHAIN_NODE)")
        }
        other => anyhow::Error::new(other).context(format!("GET {}/v1/node", client.base())),
    })?;
    if info.protocol != PROTOCOL {
        bail!(
            "the node at {} speaks {:?}, this client speaks {PROTOCOL:?}",
            client.base(),
            info.protocol
        );
    }
    if info.block_size == 0 {
        bail!("the node at {} reports a block size of 0", client.base());
    }
    let pin = pin_policy(global)?.check(client.base(), &info)?;
    let signing_key = VerifyingKey::from_bytes(&info.signing_key.0).with_context(|| {
        format!(
            "the node's signing key {} is not an Ed25519 public key",
            info.signing_key
        )
    })?;
    let encryption_key = EncryptionPublicKey::from(info.encryption_key.0);
    Ok(Node {
        client,
        info,
        signing_key,
        encryption_key,
        pin,
    })
}
