//! What an auditor checks (PROTOCOL §8), on a chain built in memory the way
//! the node builds it (§2 messages, §4 receipts, §5 Merkle roots, §6
//! headers, §7 block objects): a valid chain verifies, and each kind of
//! damage is reported as the `AuditError` that names it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealchain_shared::api::{Block, BlockMessage, BlockSummary, InclusionProof, Receipt};
use sealchain_shared::audit::{self, AuditError};
use sealchain_shared::block::{BlockHeader, GENESIS_PREV_HASH};
use sealchain_shared::merkle::{self, ProofError};
use sealchain_shared::message::{MessageBuilder, MessageError, SignedMessage};
use sealchain_shared::{Hash, SigningKey, VerifyingKey, receipt};

const BLOCK_SIZE: u32 = 4;
const BLOCKS: u64 = 3;
const T0: i64 = 1_764_000_000_000;

fn node_key() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

fn clients() -> [SigningKey; 2] {
    [SigningKey::from_bytes(&[0x01; 32]), SigningKey::from_bytes(&[0x02; 32])]
}

/// A message from `client` to the node `node`, numbered `i`.
fn signed(client: &SigningKey, node: &VerifyingKey, i: u64) -> SignedMessage {
    let mut nonce = [0u8; 16];
    nonce[8..].copy_from_slice(&i.to_be_bytes());
    MessageBuilder::new(
        node.to_bytes(),
        "sensors/temp",
        &serde_json::json!({"reading": 20.0 + i as f64 / 10.0, "unit": "C", "n": i}),
    )
    .unwrap()
    .nonce(nonce)
    .ts(T0 + i as i64)
    .sign(client)
    .unwrap()
}

fn block_message(seq: u64, client: &SigningKey, m: &SignedMessage) -> BlockMessage {
    BlockMessage {
        seq,
        leaf_hash: m.leaf_hash().into(),
        sender: client.verifying_key().to_bytes().into(),
        received_at: T0 + 1000 + seq as i64,
        signature: m.signature.into(),
        message: String::from_utf8(m.message_bytes.clone()).unwrap(),
    }
}

/// Recomputes a block's Merkle root, hash and signature from its fields and
/// messages, as a node (honest or not) holding `node` would.
fn seal(block: &mut Block, node: &SigningKey) {
    let leaves: Vec<Hash> = block.messages.iter().map(|m| m.leaf_hash.0).collect();
    block.summary.merkle_root = merkle::root(&leaves).into();
    reseal_header(&mut block.summary, node);
}

/// Recomputes only the hash and signature of a header.
fn reseal_header(s: &mut BlockSummary, node: &SigningKey) {
    let header = s.header();
    s.hash = header.hash().into();
    s.signature = header.sign(node).to_bytes().into();
    s.signer = node.verifying_key().to_bytes().into();
}

struct Chain {
    node: SigningKey,
    blocks: Vec<Block>,
    receipts: Vec<Receipt>,
}

impl Chain {
    fn vk(&self) -> VerifyingKey {
        self.node.verifying_key()
    }

    /// The proof `GET /v1/messages/{seq}/proof` would serve.
    fn proof(&self, seq: u64) -> InclusionProof {
        let block_size = u64::from(BLOCK_SIZE);
        let block = &self.blocks[(seq / block_size) as usize];
        let leaves: Vec<Hash> = block.messages.iter().map(|m| m.leaf_hash.0).collect();
        let leaf_index = seq % block_size;
        InclusionProof {
            seq,
            block_index: block.summary.index,
            leaf_index,
            tree_size: leaves.len() as u64,
            leaf_hash: leaves[leaf_index as usize].into(),
            audit_path: merkle::audit_path(leaf_index as usize, &leaves)
                .unwrap()
                .into_iter()
                .map(Into::into)
                .collect(),
            merkle_root: block.summary.merkle_root,
            block_hash: block.summary.hash,
        }
    }
}

/// Three blocks of four messages, alternating between two clients.
fn chain() -> Chain {
    let node = node_key();
    let clients = clients();
    let mut blocks: Vec<Block> = Vec::new();
    let mut receipts = Vec::new();
    for index in 0..BLOCKS {
        let first_seq = index * u64::from(BLOCK_SIZE);
        let messages: Vec<BlockMessage> = (first_seq..first_seq + u64::from(BLOCK_SIZE))
            .map(|seq| {
                let client = &clients[(seq % 2) as usize];
                let m = signed(client, &node.verifying_key(), seq);
                let bm = block_message(seq, client, &m);
                receipts.push(Receipt {
                    seq,
                    leaf_hash: bm.leaf_hash,
                    block_index: index,
                    received_at: bm.received_at,
                    signature: receipt::sign(&node, seq, &bm.leaf_hash.0, bm.received_at)
                        .to_bytes()
                        .into(),
                });
                bm
            })
            .collect();
        let leaves: Vec<Hash> = messages.iter().map(|m| m.leaf_hash.0).collect();
        let header = BlockHeader {
            index,
            prev_hash: blocks.last().map_or(GENESIS_PREV_HASH, |b| b.summary.hash.0),
            merkle_root: merkle::root(&leaves),
            first_seq,
            message_count: BLOCK_SIZE,
            sealed_at: T0 + 10_000 * (index as i64 + 1),
        };
        blocks.push(Block {
            summary: BlockSummary {
                index,
                hash: header.hash().into(),
                prev_hash: header.prev_hash.into(),
                merkle_root: header.merkle_root.into(),
                first_seq,
                message_count: BLOCK_SIZE,
                sealed_at: header.sealed_at,
                signer: node.verifying_key().to_bytes().into(),
                signature: header.sign(&node).to_bytes().into(),
            },
            messages,
        });
    }
    Chain { node, blocks, receipts }
}

fn prev_of(chain: &Chain, index: usize) -> Option<Hash> {
    index.checked_sub(1).map(|i| chain.blocks[i].summary.hash.0)
}

fn verify(chain: &Chain, block: &Block) -> Result<(), AuditError> {
    let prev = prev_of(chain, block.summary.index as usize);
    audit::verify_block(block, &chain.vk(), BLOCK_SIZE, prev.as_ref())
}

// ---------------------------------------------------------------------------
// The valid chain.

#[test]
fn valid_chain_verifies() {
    let chain = chain();
    let mut prev: Option<Hash> = None;
    for block in &chain.blocks {
        audit::verify_block(block, &chain.vk(), BLOCK_SIZE, prev.as_ref()).unwrap();
        // Without knowing the previous hash (an auditor starting mid-chain).
        audit::verify_block(block, &chain.vk(), BLOCK_SIZE, None).unwrap();
        prev = Some(block.summary.hash.0);
    }
    assert_eq!(chain.blocks[0].summary.prev_hash.0, GENESIS_PREV_HASH);
    assert_eq!(chain.blocks[2].summary.prev_hash, chain.blocks[1].summary.hash);
}

#[test]
fn valid_chain_verifies_from_its_json() {
    // The block objects as served (§7) carry everything the audit needs.
    let chain = chain();
    let mut prev: Option<Hash> = None;
    for block in &chain.blocks {
        let json = serde_json::to_string(block).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut members: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(
            members,
            [
                "first_seq",
                "hash",
                "index",
                "merkle_root",
                "message_count",
                "messages",
                "prev_hash",
                "sealed_at",
                "signature",
                "signer"
            ]
        );
        let back: Block = serde_json::from_str(&json).unwrap();
        audit::verify_block(&back, &chain.vk(), BLOCK_SIZE, prev.as_ref()).unwrap();
        prev = Some(back.summary.hash.0);
    }
}

// ---------------------------------------------------------------------------
// Each AuditError of verify_block.

#[test]
fn audit_wrong_signer() {
    let chain = chain();
    // Verified against another node's key.
    let other = SigningKey::from_bytes(&[0x43; 32]).verifying_key();
    assert_eq!(
        audit::verify_block(&chain.blocks[1], &other, BLOCK_SIZE, None),
        Err(AuditError::WrongSigner { index: 1 })
    );
    // A block that names another signer, validly signed by it.
    let mut block = chain.blocks[1].clone();
    reseal_header(&mut block.summary, &SigningKey::from_bytes(&[0x43; 32]));
    assert_eq!(verify(&chain, &block), Err(AuditError::WrongSigner { index: 1 }));
}

#[test]
fn audit_header_hash() {
    let chain = chain();
    let mut block = chain.blocks[1].clone();
    block.summary.sealed_at += 1;
    assert_eq!(verify(&chain, &block), Err(AuditError::HeaderHash { index: 1 }));
    let mut block = chain.blocks[1].clone();
    block.summary.hash.0[0] ^= 0x80;
    assert_eq!(verify(&chain, &block), Err(AuditError::HeaderHash { index: 1 }));
}

/// A block found at another position (its row swapped with another's, or
/// renumbered): its fields still hash to its hash under the index its
/// `first_seq` implies, and the audit says which block it is.
#[test]
fn audit_moved_block() {
    let chain = chain();
    let mut moved = chain.blocks[2].clone();
    moved.summary.index = 1;
    assert_eq!(verify(&chain, &moved), Err(AuditError::Moved { index: 1, holds: 2 }));
    let mut moved = chain.blocks[0].clone();
    moved.summary.index = 2;
    assert_eq!(
        audit::verify_block(&moved, &chain.vk(), BLOCK_SIZE, None),
        Err(AuditError::Moved { index: 2, holds: 0 })
    );
    // Moved and then given a new first_seq too: only the hash is wrong.
    let mut moved = chain.blocks[2].clone();
    moved.summary.index = 1;
    moved.summary.first_seq = 4;
    assert_eq!(verify(&chain, &moved), Err(AuditError::HeaderHash { index: 1 }));
}

#[test]
fn audit_block_signature() {
    let chain = chain();
    let mut block = chain.blocks[2].clone();
    block.summary.signature.0[10] ^= 1;
    assert_eq!(verify(&chain, &block), Err(AuditError::BlockSignature { index: 2 }));
    // Signed by another key while still naming the node as signer.
    let mut block = chain.blocks[2].clone();
    let other = SigningKey::from_bytes(&[0x43; 32]);
    block.summary.signature = BlockHeader::sign(&block.summary.header(), &other).to_bytes().into();
    assert_eq!(verify(&chain, &block), Err(AuditError::BlockSignature { index: 2 }));
    // The signature of block 1 on block 2.
    let mut block = chain.blocks[2].clone();
    block.summary.signature = chain.blocks[1].summary.signature;
    assert_eq!(verify(&chain, &block), Err(AuditError::BlockSignature { index: 2 }));
}

#[test]
fn audit_broken_link() {
    let chain = chain();
    // Block 2 checked against a previous hash that is not block 1's.
    let wrong = chain.blocks[0].summary.hash.0;
    assert_eq!(
        audit::verify_block(&chain.blocks[2], &chain.vk(), BLOCK_SIZE, Some(&wrong)),
        Err(AuditError::BrokenLink { index: 2 })
    );
    // A re-signed block 1 pointing elsewhere.
    let mut block = chain.blocks[1].clone();
    block.summary.prev_hash = [0x99; 32].into();
    seal(&mut block, &chain.node);
    assert_eq!(verify(&chain, &block), Err(AuditError::BrokenLink { index: 1 }));
    // Block 0 must link to zeros, whatever the caller passes.
    let mut block = chain.blocks[0].clone();
    block.summary.prev_hash = chain.blocks[2].summary.hash;
    seal(&mut block, &chain.node);
    let claimed = chain.blocks[2].summary.hash.0;
    for prev in [None, Some(&claimed)] {
        assert_eq!(
            audit::verify_block(&block, &chain.vk(), BLOCK_SIZE, prev),
            Err(AuditError::BrokenLink { index: 0 })
        );
    }
}

#[test]
fn audit_layout() {
    let chain = chain();
    // A short block: three messages, honestly counted and signed.
    let mut block = chain.blocks[1].clone();
    block.messages.pop();
    block.summary.message_count = 3;
    seal(&mut block, &chain.node);
    assert_eq!(
        verify(&chain, &block),
        Err(AuditError::Layout {
            index: 1,
            first_seq: 4,
            message_count: 3,
            block_size: BLOCK_SIZE
        })
    );
    // The right count but another first_seq.
    let mut block = chain.blocks[1].clone();
    block.summary.first_seq = 5;
    seal(&mut block, &chain.node);
    assert_eq!(
        verify(&chain, &block),
        Err(AuditError::Layout {
            index: 1,
            first_seq: 5,
            message_count: BLOCK_SIZE,
            block_size: BLOCK_SIZE
        })
    );
    // The chain's block size is not the auditor's.
    assert!(matches!(
        audit::verify_block(&chain.blocks[1], &chain.vk(), BLOCK_SIZE + 1, None),
        Err(AuditError::Layout { index: 1, .. })
    ));
}

#[test]
fn audit_message_list_length() {
    let chain = chain();
    let mut block = chain.blocks[1].clone();
    block.messages.pop();
    assert_eq!(
        verify(&chain, &block),
        Err(AuditError::MessageList {
            index: 1,
            expected: BLOCK_SIZE,
            found: 3
        })
    );
    let mut block = chain.blocks[1].clone();
    block.messages.push(chain.blocks[2].messages[0].clone());
    assert_eq!(
        verify(&chain, &block),
        Err(AuditError::MessageList {
            index: 1,
            expected: BLOCK_SIZE,
            found: 5
        })
    );
}

#[test]
fn audit_seq_gap() {
    let chain = chain();
    let mut block = chain.blocks[1].clone();
    block.messages[2].seq = 7;
    assert_eq!(
        verify(&chain, &block),
        Err(AuditError::SeqGap {
            index: 1,
            expected: 6,
            found: 7
        })
    );
    // Two messages swapped, seqs included.
    let mut block = chain.blocks[1].clone();
    block.messages.swap(0, 1);
    assert_eq!(
        verify(&chain, &block),
        Err(AuditError::SeqGap {
            index: 1,
            expected: 4,
            found: 5
        })
    );
}

#[test]
fn audit_leaf_hash() {
    let chain = chain();
    let mut block = chain.blocks[2].clone();
    block.messages[3].leaf_hash.0[31] ^= 1;
    assert_eq!(verify(&chain, &block), Err(AuditError::LeafHash { seq: 11 }));
    // The message text changed but not its leaf hash.
    let mut block = chain.blocks[2].clone();
    block.messages[0].message = block.messages[0].message.replace("sensors/temp", "sensors/tamp");
    assert_eq!(verify(&chain, &block), Err(AuditError::LeafHash { seq: 8 }));
    // The signature changed but not the leaf hash.
    let mut block = chain.blocks[2].clone();
    block.messages[1].signature.0[0] ^= 1;
    assert_eq!(verify(&chain, &block), Err(AuditError::LeafHash { seq: 9 }));
}

/// Replaces message `i` of `block` and fixes its leaf hash, so the check
/// under test is the first to object.
fn replace_message(block: &mut Block, i: usize, signature: [u8; 64], text: &str) {
    let m = &mut block.messages[i];
    m.signature = signature.into();
    m.message = text.to_owned();
    m.leaf_hash = merkle::leaf_hash_parts(&signature, text.as_bytes()).into();
}

#[test]
fn audit_invalid_message() {
    let chain = chain();
    let mut block = chain.blocks[0].clone();
    let signature = block.messages[1].signature.0;
    replace_message(&mut block, 1, signature, "not json");
    assert!(matches!(
        verify(&chain, &block),
        Err(AuditError::InvalidMessage {
            seq: 1,
            error: MessageError::NotJsonObject(_)
        })
    ));
    let mut block = chain.blocks[0].clone();
    let text = block.messages[2].message.replace(r#""v":1"#, r#""v":2"#);
    replace_message(&mut block, 2, signature, &text);
    match verify(&chain, &block) {
        Err(AuditError::InvalidMessage { seq: 2, error }) => assert_eq!(error.member(), Some("v")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn audit_sender_mismatch() {
    let chain = chain();
    let mut block = chain.blocks[0].clone();
    // Message 0 is from client 0; the block says client 1 sent it.
    block.messages[0].sender = clients()[1].verifying_key().to_bytes().into();
    assert_eq!(verify(&chain, &block), Err(AuditError::SenderMismatch { seq: 0 }));
}

#[test]
fn audit_wrong_node() {
    let chain = chain();
    let mut block = chain.blocks[1].clone();
    let client = &clients()[0];
    // Validly signed by its sender, but bound to another node.
    let elsewhere = SigningKey::from_bytes(&[0x43; 32]).verifying_key();
    let m = signed(client, &elsewhere, 4);
    replace_message(
        &mut block,
        0,
        m.signature,
        std::str::from_utf8(&m.message_bytes).unwrap(),
    );
    assert_eq!(verify(&chain, &block), Err(AuditError::WrongNode { seq: 4 }));
}

#[test]
fn audit_message_signature() {
    let chain = chain();
    let [c0, c1] = clients();
    let mut block = chain.blocks[1].clone();
    // Message 4 is from client 0; client 1 signs it instead.
    let text = block.messages[0].message.clone();
    let forged = sealchain_shared::message::sign(&c1, text.as_bytes()).to_bytes();
    replace_message(&mut block, 0, forged, &text);
    assert_eq!(verify(&chain, &block), Err(AuditError::MessageSignature { seq: 4 }));
    // The sender's own signature over other bytes.
    let mut block = chain.blocks[1].clone();
    let other = signed(&c0, &chain.vk(), 99);
    replace_message(&mut block, 0, other.signature, &text);
    assert_eq!(verify(&chain, &block), Err(AuditError::MessageSignature { seq: 4 }));
}

#[test]
fn audit_merkle_root() {
    let chain = chain();
    // Two messages exchanged while their seqs stay in order: every message
    // check passes, the root does not.
    let mut block = chain.blocks[1].clone();
    let (a, b) = (block.messages[0].clone(), block.messages[1].clone());
    block.messages[0] = BlockMessage { seq: a.seq, ..b };
    block.messages[1] = BlockMessage { seq: a.seq + 1, ..a };
    assert_eq!(verify(&chain, &block), Err(AuditError::MerkleRoot { index: 1 }));
    // A valid message substituted for another.
    let mut block = chain.blocks[1].clone();
    let client = &clients()[0];
    let m = signed(client, &chain.vk(), 1000);
    block.messages[2] = block_message(6, client, &m);
    assert_eq!(verify(&chain, &block), Err(AuditError::MerkleRoot { index: 1 }));
    // A header whose root was changed and re-signed.
    let mut block = chain.blocks[1].clone();
    block.summary.merkle_root.0[5] ^= 4;
    reseal_header(&mut block.summary, &chain.node);
    assert_eq!(verify(&chain, &block), Err(AuditError::MerkleRoot { index: 1 }));
}

// ---------------------------------------------------------------------------
// Receipts and inclusion proofs.

#[test]
fn receipts_verify() {
    let chain = chain();
    assert_eq!(chain.receipts.len(), (BLOCKS * u64::from(BLOCK_SIZE)) as usize);
    for r in &chain.receipts {
        audit::verify_receipt(r, &chain.vk(), BLOCK_SIZE).unwrap();
    }
}

#[test]
fn receipt_failures() {
    let chain = chain();
    let good = &chain.receipts[6];
    let vk = chain.vk();
    let cases = [
        Receipt {
            seq: 7,
            block_index: 1,
            ..good.clone()
        },
        Receipt {
            leaf_hash: chain.receipts[5].leaf_hash,
            ..good.clone()
        },
        Receipt {
            received_at: good.received_at + 1,
            ..good.clone()
        },
        Receipt {
            signature: chain.receipts[5].signature,
            ..good.clone()
        },
    ];
    for r in cases {
        assert_eq!(
            audit::verify_receipt(&r, &vk, BLOCK_SIZE),
            Err(AuditError::ReceiptSignature { seq: r.seq })
        );
    }
    let other = SigningKey::from_bytes(&[0x43; 32]).verifying_key();
    assert_eq!(
        audit::verify_receipt(good, &other, BLOCK_SIZE),
        Err(AuditError::ReceiptSignature { seq: 6 })
    );
    let r = Receipt {
        block_index: 2,
        ..good.clone()
    };
    assert_eq!(
        audit::verify_receipt(&r, &vk, BLOCK_SIZE),
        Err(AuditError::BlockIndex {
            seq: 6,
            expected: 1,
            found: 2
        })
    );
}

#[test]
fn inclusion_proofs_verify() {
    let chain = chain();
    for r in &chain.receipts {
        let proof = chain.proof(r.seq);
        let block = &chain.blocks[proof.block_index as usize].summary;
        audit::verify_block_header(block, &chain.vk(), BLOCK_SIZE, None).unwrap();
        audit::verify_inclusion(r, &proof, block, BLOCK_SIZE).unwrap();
    }
}

#[test]
fn inclusion_proof_mismatches() {
    let chain = chain();
    let receipt = &chain.receipts[5];
    let good = chain.proof(5);
    let block = &chain.blocks[1].summary;
    audit::verify_inclusion(receipt, &good, block, BLOCK_SIZE).unwrap();

    let mismatch = |what| Err(AuditError::ProofMismatch { seq: 5, what });
    let check = |proof: InclusionProof, block: &BlockSummary, want: Result<(), AuditError>| {
        assert_eq!(audit::verify_inclusion(receipt, &proof, block, BLOCK_SIZE), want);
    };

    // The proof of another message.
    check(chain.proof(6), block, mismatch("seq"));
    check(
        InclusionProof {
            leaf_hash: chain.receipts[6].leaf_hash,
            ..good.clone()
        },
        block,
        mismatch("leaf_hash"),
    );
    // The proof shown against another block.
    check(good.clone(), &chain.blocks[2].summary, mismatch("block index"));
    check(
        InclusionProof {
            leaf_index: 2,
            ..good.clone()
        },
        block,
        mismatch("leaf_index"),
    );
    check(
        InclusionProof {
            tree_size: 5,
            ..good.clone()
        },
        block,
        mismatch("tree_size"),
    );
    check(
        InclusionProof {
            merkle_root: chain.blocks[0].summary.merkle_root,
            ..good.clone()
        },
        block,
        mismatch("merkle_root"),
    );
    check(
        InclusionProof {
            block_hash: chain.blocks[0].summary.hash,
            ..good.clone()
        },
        block,
        mismatch("block_hash"),
    );
    // A block index that is not seq / block_size.
    check(
        InclusionProof {
            block_index: 0,
            ..good.clone()
        },
        block,
        Err(AuditError::BlockIndex {
            seq: 5,
            expected: 1,
            found: 0,
        }),
    );
}

#[test]
fn inclusion_proof_path_failures() {
    let chain = chain();
    let receipt = &chain.receipts[5];
    let good = chain.proof(5);
    let block = &chain.blocks[1].summary;
    assert_eq!(good.audit_path.len(), 2);

    for i in 0..good.audit_path.len() {
        for bit in [0usize, 77, 255] {
            let mut proof = good.clone();
            proof.audit_path[i].0[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                audit::verify_inclusion(receipt, &proof, block, BLOCK_SIZE),
                Err(AuditError::Inclusion {
                    seq: 5,
                    error: ProofError::RootMismatch
                })
            );
        }
    }
    let mut proof = good.clone();
    proof.audit_path.reverse();
    assert_eq!(
        audit::verify_inclusion(receipt, &proof, block, BLOCK_SIZE),
        Err(AuditError::Inclusion {
            seq: 5,
            error: ProofError::RootMismatch
        })
    );
    let mut proof = good.clone();
    proof.audit_path.pop();
    assert_eq!(
        audit::verify_inclusion(receipt, &proof, block, BLOCK_SIZE),
        Err(AuditError::Inclusion {
            seq: 5,
            error: ProofError::WrongPathLength
        })
    );
    let mut proof = good.clone();
    proof.audit_path.push(block.merkle_root);
    assert_eq!(
        audit::verify_inclusion(receipt, &proof, block, BLOCK_SIZE),
        Err(AuditError::Inclusion {
            seq: 5,
            error: ProofError::WrongPathLength
        })
    );

    // A header claiming fewer messages than the block size (one that
    // verify_block_header would refuse) leaves the leaf outside the tree.
    let short = BlockSummary {
        message_count: 1,
        ..block.clone()
    };
    let proof = InclusionProof {
        tree_size: 1,
        ..good.clone()
    };
    assert_eq!(
        audit::verify_inclusion(receipt, &proof, &short, BLOCK_SIZE),
        Err(AuditError::Inclusion {
            seq: 5,
            error: ProofError::IndexOutOfRange { index: 1, size: 1 }
        })
    );
}

/// Replaces message `at` with a copy of message `of` (same signed bytes, the
/// seq of `at`), then reseals every block from the changed one on with the
/// node's key, as a dishonest node would: every other check passes.
fn replay(chain: &mut Chain, of: u64, at: u64) {
    let block_size = u64::from(BLOCK_SIZE);
    let original = chain.blocks[(of / block_size) as usize].messages[(of % block_size) as usize].clone();
    let target = (at / block_size) as usize;
    chain.blocks[target].messages[(at % block_size) as usize] = BlockMessage { seq: at, ..original };
    for i in target..chain.blocks.len() {
        if i > 0 {
            chain.blocks[i].summary.prev_hash = chain.blocks[i - 1].summary.hash;
        }
        let node = chain.node.clone();
        seal(&mut chain.blocks[i], &node);
    }
}

#[test]
fn the_auditor_accepts_a_valid_chain_and_remembers_every_pair() {
    let chain = chain();
    let mut auditor = audit::Auditor::new(chain.vk(), BLOCK_SIZE);
    for block in &chain.blocks {
        auditor.check(block).unwrap();
    }
    assert_eq!(auditor.next_index(), BLOCKS);
    assert_eq!(auditor.prev_hash(), Some(&chain.blocks[2].summary.hash.0));
    let pairs = auditor.pairs();
    assert_eq!(pairs.len(), (BLOCKS * u64::from(BLOCK_SIZE)) as usize);
    assert_eq!(
        pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>()
    );
    // Re-auditing remembered blocks is no replay.
    let mut again = audit::Auditor::new(chain.vk(), BLOCK_SIZE);
    again.remember(pairs);
    for block in &chain.blocks {
        again.check(block).unwrap();
    }
}

#[test]
fn the_auditor_catches_a_replay_in_another_block_naming_both_seqs() {
    let mut chain = chain();
    replay(&mut chain, 1, 9);
    // Each block on its own is valid: the replay is a chain-level fault.
    for (i, block) in chain.blocks.iter().enumerate() {
        audit::verify_block(block, &chain.vk(), BLOCK_SIZE, prev_of(&chain, i).as_ref()).unwrap();
    }
    let mut auditor = audit::Auditor::new(chain.vk(), BLOCK_SIZE);
    auditor.check(&chain.blocks[0]).unwrap();
    auditor.check(&chain.blocks[1]).unwrap();
    let err = auditor.check(&chain.blocks[2]).unwrap_err();
    assert!(
        matches!(
            &err,
            AuditError::Replay {
                seq: 9,
                first_seq: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("message 9") && text.contains("message 1"), "{text}");
    assert_eq!(auditor.next_index(), 2, "a failed block is not passed");
}

#[test]
fn the_auditor_catches_a_replay_within_one_block_and_of_a_remembered_message() {
    let mut chain = chain();
    replay(&mut chain, 8, 10);
    let mut auditor = audit::Auditor::new(chain.vk(), BLOCK_SIZE);
    auditor.check(&chain.blocks[0]).unwrap();
    auditor.check(&chain.blocks[1]).unwrap();
    assert!(matches!(
        auditor.check(&chain.blocks[2]),
        Err(AuditError::Replay {
            seq: 10,
            first_seq: 8,
            ..
        })
    ));

    // An audit that starts at block 2 knows of block 0 only through the
    // pairs an earlier audit remembered.
    let mut chain = self::chain();
    let mut first = audit::Auditor::new(chain.vk(), BLOCK_SIZE);
    first.check(&chain.blocks[0]).unwrap();
    let remembered = first.pairs();
    replay(&mut chain, 2, 11);
    let mut later = audit::Auditor::starting_at(chain.vk(), BLOCK_SIZE, 2, Some(chain.blocks[1].summary.hash.0));
    later.remember(remembered);
    assert!(matches!(
        later.check(&chain.blocks[2]),
        Err(AuditError::Replay {
            seq: 11,
            first_seq: 2,
            ..
        })
    ));
    // Without that memory the replay cannot be seen.
    let mut forgetful = audit::Auditor::starting_at(chain.vk(), BLOCK_SIZE, 2, Some(chain.blocks[1].summary.hash.0));
    forgetful.check(&chain.blocks[2]).unwrap();
}

#[test]
fn the_auditor_refuses_blocks_out_of_order_or_unlinked() {
    let chain = chain();
    let mut auditor = audit::Auditor::new(chain.vk(), BLOCK_SIZE);
    assert_eq!(
        auditor.check(&chain.blocks[1]),
        Err(AuditError::Index { expected: 0, found: 1 })
    );
    auditor.check(&chain.blocks[0]).unwrap();
    let mut wrong_prev = audit::Auditor::starting_at(chain.vk(), BLOCK_SIZE, 2, Some([7; 32]));
    assert_eq!(
        wrong_prev.check(&chain.blocks[2]),
        Err(AuditError::BrokenLink { index: 2 })
    );
}

/// The split audit (a block's own checks anywhere, then index and link in
/// order) names exactly the fault `verify_block` with the previous hash
/// names, also when a block has several.
#[test]
fn checked_blocks_in_order_name_the_fault_verify_block_names() {
    let chain = chain();
    let node = chain.node.clone();
    let vk = chain.vk();
    let prev = chain.blocks[0].summary.hash.0;
    let mut variants: Vec<Block> = Vec::new();
    // Bad link and a bad message (signature, root), resealed: the link first.
    let mut b = chain.blocks[1].clone();
    b.summary.prev_hash.0 = [9; 32];
    b.messages[2].signature.0[0] ^= 1;
    seal(&mut b, &node);
    variants.push(b);
    // Bad link and a bad node signature: the signature first.
    let mut b = chain.blocks[1].clone();
    b.summary.prev_hash.0 = [9; 32];
    seal(&mut b, &node);
    b.summary.signature.0[3] ^= 1;
    variants.push(b);
    // A good link and a bad Merkle root.
    let mut b = chain.blocks[1].clone();
    b.summary.merkle_root.0[0] ^= 1;
    reseal_header(&mut b.summary, &node);
    variants.push(b);
    variants.push(chain.blocks[1].clone());
    for block in &variants {
        let want = audit::verify_block(block, &vk, BLOCK_SIZE, Some(&prev));
        let checked = audit::CheckedBlock::new(block, &vk, BLOCK_SIZE);
        let mut cursor = audit::ChainCursor::starting_at(1, Some(prev));
        let got = cursor.accept(&checked).map(drop);
        assert_eq!(got, want, "{block:?}");
        if got.is_ok() {
            cursor.advance(&checked);
            assert_eq!(cursor.prev_hash(), Some(&block.summary.hash.0));
        }
    }
    assert!(matches!(
        audit::verify_block(&variants[0], &vk, BLOCK_SIZE, Some(&prev)),
        Err(AuditError::BrokenLink { index: 1 })
    ));
    // Out of place: the index before anything else.
    let checked = audit::CheckedBlock::new(&variants[1], &vk, BLOCK_SIZE);
    assert_eq!(
        audit::ChainCursor::starting_at(2, Some(prev))
            .accept(&checked)
            .map(drop),
        Err(AuditError::Index { expected: 2, found: 1 })
    );
}
