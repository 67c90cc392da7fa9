//! Auditing a node's whole chain the way an auditor does (PROTOCOL §8).

use std::collections::HashMap;

use sealchain_client::api::NodeClient;
use sealchain_shared::api::{Block, NodeInfo, Receipt};
use sealchain_shared::{Hash, VerifyingKey, audit};

/// Fetches blocks `0..count` and audits them as one chain; returns them.
pub async fn audit_chain(client: &NodeClient, info: &NodeInfo) -> Vec<Block> {
    let key = VerifyingKey::from_bytes(&info.signing_key.0).expect("node signing key");
    let count = client.block_count().await.expect("block count");
    let mut auditor = audit::Auditor::new(key, info.block_size);
    let mut blocks: Vec<Block> = Vec::new();
    for i in 0..count {
        let block = client.block(i).await.expect("block");
        auditor
            .check(&block)
            .unwrap_or_else(|e| panic!("the chain does not audit: {e}"));
        blocks.push(block);
    }
    blocks
}

/// Asserts that every receipt is signed by the node and names a message
/// that stands in the chain exactly once, at the receipt's seq, and that the
/// chain holds nothing else.
pub fn assert_each_exactly_once(blocks: &[Block], receipts: &[Receipt], info: &NodeInfo) {
    let key = VerifyingKey::from_bytes(&info.signing_key.0).expect("node signing key");
    let mut positions: HashMap<Hash, Vec<u64>> = HashMap::new();
    for m in blocks.iter().flat_map(|b| &b.messages) {
        positions.entry(m.leaf_hash.0).or_default().push(m.seq);
    }
    for r in receipts {
        audit::verify_receipt(r, &key, info.block_size).expect("receipt signature");
        assert_eq!(positions.get(&r.leaf_hash.0), Some(&vec![r.seq]), "receipt {}", r.seq);
    }
    assert_eq!(
        positions.len(),
        receipts.len(),
        "the chain holds messages nobody was told about"
    );
}
