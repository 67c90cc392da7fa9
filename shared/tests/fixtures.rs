//! Fixed byte fixtures for the protocol's wire formats.
//!
//! - PROTOCOL §2: the message bytes the builder writes, the message
//!   signing input and signature, `signed_message` and its leaf hash (§5);
//! - §4: the receipt signing input and signature, and the receipt JSON;
//! - §6: the 111-byte block header, its SHA-256 and the block signature;
//! - §7: the block header object JSON.
//!
//! Every expected value here was derived without this crate: the byte
//! layouts by hand from the protocol text, hashes with `sha256sum` over
//! those bytes, and signatures with `openssl pkeyutl -sign -rawin` (Ed25519
//! is deterministic, RFC 8032 §5.1.6). Keys are the RFC 8032 §7.1 test keys
//! and the all-0x42 secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealchain_shared::api::{BlockSummary, Receipt};
use sealchain_shared::block::{self, BlockHeader, HEADER_LEN};
use sealchain_shared::message::{self, Message, MessageBuilder, SignedMessage};
use sealchain_shared::{Signature, SigningKey, merkle, receipt};

/// Secret of the node key used for block and receipt signatures.
const NODE_SECRET: [u8; 32] = [0x42; 32];
/// Its Ed25519 public key (`openssl pkey -pubout`).
const NODE_PUBLIC: &str = "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12";

/// RFC 8032 §7.1 TEST 1: the client.
const CLIENT_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const CLIENT_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// RFC 8032 §7.1 TEST 2: the node a message is bound to.
const BOUND_NODE_SECRET: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const BOUND_NODE_PUBLIC: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

/// 1764000000000 ms = 0x0000019a_b697e800 (2025-11-24T16:00:00Z).
const T: i64 = 1_764_000_000_000;

fn key(secret_hex: &str) -> SigningKey {
    SigningKey::from_bytes(&hex::decode(secret_hex).unwrap().try_into().unwrap())
}

fn h32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

fn sig(hex_str: &str) -> Signature {
    Signature::from_bytes(&hex::decode(hex_str).unwrap().try_into().unwrap())
}

#[test]
fn fixture_keys_are_the_published_ones() {
    assert_eq!(
        hex::encode(key(CLIENT_SECRET).verifying_key().as_bytes()),
        CLIENT_PUBLIC
    );
    assert_eq!(
        hex::encode(key(BOUND_NODE_SECRET).verifying_key().as_bytes()),
        BOUND_NODE_PUBLIC
    );
    assert_eq!(
        hex::encode(SigningKey::from_bytes(&NODE_SECRET).verifying_key().as_bytes()),
        NODE_PUBLIC
    );
}

// ---------------------------------------------------------------------------
// §6 Blocks.

fn fixture_header() -> BlockHeader {
    BlockHeader {
        index: 1,
        prev_hash: [0x11; 32],
        merkle_root: [0x22; 32],
        first_seq: 100,
        message_count: 100,
        sealed_at: T,
    }
}

fn fixture_header_hex() -> String {
    [
        // "sealchain/block/v1" || 0x00 (19 bytes)
        "7365616c636861696e2f626c6f636b2f7631",
        "00",
        // u64be(index = 1)
        "0000000000000001",
        // prev_hash = 0x11 x 32
        "1111111111111111111111111111111111111111111111111111111111111111",
        // merkle_root = 0x22 x 32
        "2222222222222222222222222222222222222222222222222222222222222222",
        // u64be(first_seq = 100)
        "0000000000000064",
        // u32be(message_count = 100)
        "00000064",
        // i64be(sealed_at = 1764000000000)
        "0000019ab697e800",
    ]
    .concat()
}

/// `sha256sum` of the header bytes above.
const FIXTURE_BLOCK_HASH: &str = "ceae2fe964279a79e5378272c9ad2fd13bfc4681c8c2199be08c6d9b7a325970";

/// `openssl pkeyutl -sign -rawin` with the 0x42 key over
/// `"sealchain/block-signature/v1" || 0x00 || FIXTURE_BLOCK_HASH`.
const FIXTURE_BLOCK_SIGNATURE: &str = "7e81b1e44658be9e9a89475e560c1989d6972d13e5038aad068775adeb17816e\
                                       2ce62f675f1562c6ef716e52a2c78e6e41970c10c35a580cf0c44a637686980c";

#[test]
fn block_header_encoding_fixture() {
    let encoded = fixture_header().encode();
    assert_eq!(encoded.len(), HEADER_LEN);
    assert_eq!(hex::encode(encoded), fixture_header_hex());
}

#[test]
fn block_hash_fixture() {
    assert_eq!(hex::encode(fixture_header().hash()), FIXTURE_BLOCK_HASH);
}

#[test]
fn block_genesis_header_fixture() {
    let genesis = BlockHeader {
        index: 0,
        prev_hash: block::GENESIS_PREV_HASH,
        merkle_root: [0xab; 32],
        first_seq: 0,
        message_count: 4,
        sealed_at: 0,
    };
    let expected = [
        "7365616c636861696e2f626c6f636b2f763100",
        "0000000000000000",
        &"00".repeat(32),
        &"ab".repeat(32),
        "0000000000000000",
        "00000004",
        "0000000000000000",
    ]
    .concat();
    assert_eq!(hex::encode(genesis.encode()), expected);
}

#[test]
fn block_signature_input_fixture() {
    let expected = [
        // "sealchain/block-signature/v1" || 0x00
        "7365616c636861696e2f626c6f636b2d7369676e61747572652f7631",
        "00",
        FIXTURE_BLOCK_HASH,
    ]
    .concat();
    assert_eq!(hex::encode(block::signature_input(&h32(FIXTURE_BLOCK_HASH))), expected);
}

#[test]
fn block_signature_fixture_is_deterministic_and_verifies() {
    let node = SigningKey::from_bytes(&NODE_SECRET);
    let header = fixture_header();
    let signature = header.sign(&node);
    assert_eq!(hex::encode(signature.to_bytes()), FIXTURE_BLOCK_SIGNATURE);
    assert_eq!(header.sign(&node), signature);
    assert!(block::verify_block_signature(
        &node.verifying_key(),
        &header.hash(),
        &sig(FIXTURE_BLOCK_SIGNATURE)
    ));
}

// ---------------------------------------------------------------------------
// §4 Receipts.

fn fixture_receipt_input_hex() -> String {
    [
        // "sealchain/receipt/v1" || 0x00 (21 bytes)
        "7365616c636861696e2f726563656970742f7631",
        "00",
        // u64be(seq = 1234 = 0x4d2)
        "00000000000004d2",
        // leaf_hash = 0x33 x 32
        "3333333333333333333333333333333333333333333333333333333333333333",
        // i64be(received_at = 1764000000000)
        "0000019ab697e800",
    ]
    .concat()
}

/// `openssl pkeyutl -sign -rawin` with the 0x42 key over the input above.
const FIXTURE_RECEIPT_SIGNATURE: &str = "7397d29f83b43a4e241cc966dcf191bc0802b62ff61bc002979bb5f356a15a48\
                                         de969f131bcea5a6cb4eab96959cfaf5f90226092109d9e0864db8c794729f0b";

#[test]
fn receipt_signing_input_fixture() {
    let input = receipt::signing_input(1234, &[0x33; 32], T);
    assert_eq!(input.len(), receipt::RECEIPT_INPUT_LEN);
    assert_eq!(hex::encode(input), fixture_receipt_input_hex());
}

#[test]
fn receipt_signature_fixture_is_deterministic_and_verifies() {
    let node = SigningKey::from_bytes(&NODE_SECRET);
    let signature = receipt::sign(&node, 1234, &[0x33; 32], T);
    assert_eq!(hex::encode(signature.to_bytes()), FIXTURE_RECEIPT_SIGNATURE);
    assert_eq!(receipt::sign(&node, 1234, &[0x33; 32], T), signature);
    assert!(receipt::verify(
        &node.verifying_key(),
        1234,
        &[0x33; 32],
        T,
        &sig(FIXTURE_RECEIPT_SIGNATURE)
    ));
}

#[test]
fn block_and_receipt_signatures_do_not_cross_domains() {
    let node = SigningKey::from_bytes(&NODE_SECRET);
    let vk = node.verifying_key();
    let block_hash = h32(FIXTURE_BLOCK_HASH);
    let block_sig = sig(FIXTURE_BLOCK_SIGNATURE);
    let receipt_sig = sig(FIXTURE_RECEIPT_SIGNATURE);

    // A block signature is no receipt, whatever receipt fields it is tried
    // with (including the block hash as the leaf hash).
    for (seq, leaf, at) in [(1234, [0x33; 32], T), (1, block_hash, T), (0, block_hash, 0)] {
        assert!(!receipt::verify(&vk, seq, &leaf, at, &block_sig));
    }
    // A receipt signature is no block signature, for the fixture block or
    // a "block hash" equal to the receipt's leaf hash.
    assert!(!block::verify_block_signature(&vk, &block_hash, &receipt_sig));
    assert!(!block::verify_block_signature(&vk, &[0x33; 32], &receipt_sig));
    // Neither is a message signature by the node's key.
    let header_bytes = fixture_header().encode();
    let receipt_input = receipt::signing_input(1234, &[0x33; 32], T);
    for (bytes, s) in [(&header_bytes[..], &block_sig), (&receipt_input[..], &receipt_sig)] {
        assert!(message::verify(&vk.to_bytes(), bytes, &s.to_bytes()).is_err());
    }
}

#[test]
fn receipt_json_fixture() {
    let receipt = Receipt {
        seq: 1234,
        leaf_hash: [0x33; 32].into(),
        block_index: 12,
        received_at: T,
        signature: sig(FIXTURE_RECEIPT_SIGNATURE).to_bytes().into(),
    };
    let expected = format!(
        r#"{{"seq":1234,"leaf_hash":"{}","block_index":12,"received_at":1764000000000,"signature":"{}"}}"#,
        "33".repeat(32),
        FIXTURE_RECEIPT_SIGNATURE
    );
    assert_eq!(serde_json::to_string(&receipt).unwrap(), expected);
    assert_eq!(serde_json::from_str::<Receipt>(&expected).unwrap(), receipt);
}

// ---------------------------------------------------------------------------
// §7 The block header object.

#[test]
fn block_summary_json_fixture() {
    let json = format!(
        r#"{{"index":1,"hash":"{FIXTURE_BLOCK_HASH}","prev_hash":"{}","merkle_root":"{}","first_seq":100,"message_count":100,"sealed_at":1764000000000,"signer":"{NODE_PUBLIC}","signature":"{FIXTURE_BLOCK_SIGNATURE}"}}"#,
        "11".repeat(32),
        "22".repeat(32),
    );
    let summary: BlockSummary = serde_json::from_str(&json).unwrap();
    assert_eq!(summary.header(), fixture_header());
    assert_eq!(summary.hash(), fixture_header().hash());
    assert_eq!(serde_json::to_string(&summary).unwrap(), json);
}

// ---------------------------------------------------------------------------
// §2 The message.

/// What `MessageBuilder` writes for the RFC 8032 TEST 1 client to the TEST 2
/// node: members in table order, no whitespace.
const FIXTURE_MESSAGE: &str = concat!(
    r#"{"v":1,"#,
    r#""sender":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a","#,
    r#""node":"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c","#,
    r#""nonce":"000102030405060708090a0b0c0d0e0f","#,
    r#""ts":1764000000000,"#,
    r#""topic":"sensors/temp","#,
    r#""body":{"reading":21.5,"unit":"C"}}"#,
);

/// `openssl pkeyutl -sign -rawin` with the TEST 1 key over
/// `"sealchain/message/v1" || 0x00 || FIXTURE_MESSAGE`.
const FIXTURE_MESSAGE_SIGNATURE: &str = "72392f126f123eb4ad56ebf1d236c8724e1f6a23577c9ca8fe82b26999c3c226\
                                         35dd0e7397b3646804945e88db6d203f3edcdbaf0e2a6900101560d6842ce801";

/// `sha256sum` of `0x00 || signature || FIXTURE_MESSAGE`.
const FIXTURE_LEAF_HASH: &str = "d25a4336991108bb3ab61bb130fd650f870a01aa65f5e74837e56dab876c4de1";

fn fixture_builder() -> MessageBuilder {
    MessageBuilder::new(
        h32(BOUND_NODE_PUBLIC),
        "sensors/temp",
        &serde_json::json!({"reading": 21.5, "unit": "C"}),
    )
    .unwrap()
    .nonce([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
    .ts(T)
}

#[test]
fn message_signing_input_prefix_fixture() {
    // "sealchain/message/v1" || 0x00
    let prefix = hex::decode("7365616c636861696e2f6d6573736167652f763100").unwrap();
    assert_eq!(message::MESSAGE_SIGNATURE_DOMAIN, &prefix[..]);
    let input = message::signing_input(FIXTURE_MESSAGE.as_bytes());
    assert_eq!(&input[..prefix.len()], &prefix[..]);
    assert_eq!(&input[prefix.len()..], FIXTURE_MESSAGE.as_bytes());
}

#[test]
fn message_bytes_fixture() {
    let client = key(CLIENT_SECRET);
    let bytes = fixture_builder().to_bytes(&client.verifying_key()).unwrap();
    assert_eq!(std::str::from_utf8(&bytes).unwrap(), FIXTURE_MESSAGE);
    let parsed = Message::parse(&bytes, message::DEFAULT_MAX_MESSAGE_BYTES).unwrap();
    assert_eq!(parsed.sender, h32(CLIENT_PUBLIC));
    assert_eq!(parsed.node, h32(BOUND_NODE_PUBLIC));
    assert_eq!(parsed.ts, T);
    assert_eq!(parsed.topic, "sensors/temp");
    assert_eq!(parsed.body.get(), r#"{"reading":21.5,"unit":"C"}"#);
}

#[test]
fn message_signature_and_leaf_hash_fixture() {
    let client = key(CLIENT_SECRET);
    let signed = fixture_builder().sign(&client).unwrap();
    assert_eq!(hex::encode(signed.signature), FIXTURE_MESSAGE_SIGNATURE);
    message::verify(
        &h32(CLIENT_PUBLIC),
        FIXTURE_MESSAGE.as_bytes(),
        &sig(FIXTURE_MESSAGE_SIGNATURE).to_bytes(),
    )
    .unwrap();

    // signed_message = sig || message_bytes
    let wire = signed.to_bytes();
    assert_eq!(hex::encode(&wire[..64]), FIXTURE_MESSAGE_SIGNATURE);
    assert_eq!(&wire[64..], FIXTURE_MESSAGE.as_bytes());
    assert_eq!(SignedMessage::from_bytes(&wire).unwrap(), signed);

    assert_eq!(hex::encode(signed.leaf_hash()), FIXTURE_LEAF_HASH);
    assert_eq!(hex::encode(merkle::leaf_hash(&wire)), FIXTURE_LEAF_HASH);
}
