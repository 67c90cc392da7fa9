//! # sealchain-shared: the sealchain protocol v1
//!
//! This crate is the protocol. Everything a client, the node or an auditor
//! needs to produce or check a byte on the wire or in the chain lives here,
//! and nothing here depends on a web framework or a database.
//!
//! | module | protocol section | what it does |
//! | --- | --- | --- |
//! | [`keys`] | §1 Identities and key files | Ed25519 / X25519 keys, PKCS#8 PEM files with mode 0600 |
//! | [`message`] | §2 The message | schema validation of exact bytes, the builder, signing and strict verification |
//! | [`strict`] | §2 (RFC 8032, strict) | strict Ed25519 verification, exactly `verify_strict`'s answers, one exponentiation cheaper |
//! | [`hpke`] | §3 (RFC 9180) | DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20Poly1305, base mode |
//! | [`envelope`] | §3 The envelope | the `{"enc","ct"}` JSON object, seal and open |
//! | [`receipt`] | §4 Receipts | the receipt signing input and its signature |
//! | [`merkle`] | §5 Merkle tree | RFC 6962 roots and audit paths, RFC 9162 proof verification |
//! | [`block`] | §6 Blocks | header bytes, block hash and block signature |
//! | [`api`] | §7 REST API | the JSON objects the node serves |
//! | [`audit`] | §8 What an auditor checks | `verify_block`, `verify_receipt`, `verify_inclusion`, `verify_entry` |
//! | [`note`] | §9 (C2SP signed-note, tlog-checkpoint) | signed notes, verifier keys, checkpoints |
//! | [`tlog`] | §9 (C2SP tlog-tiles, RFC 6962) | compact ranges, tile paths and widths, entry bundles, inclusion and consistency proofs |
//! | [`tlog_proof`] | §9 (C2SP tlog-proof) | proof bundles: format and offline verification |
//! | [`cosignature`] | §10 Witnesses (C2SP tlog-cosignature) | Ed25519 `cosignature/v1`: key IDs, signing, verifying |
//! | [`witness_protocol`] | §10 (C2SP tlog-witness) | the `add-checkpoint` request and answer texts |
//! | [`policy`] | §10 (C2SP tlog-policy) | witness policies and the quorum check of a checkpoint |
//!
//! The normative text is `PROTOCOL.md`; the decisions this implementation
//! took where that text is silent are in the repository's `docs/protocol.md`.

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod block;
pub mod cosignature;
pub mod envelope;
pub mod hexbytes;
pub mod hpke;
pub mod keys;
pub mod merkle;
pub mod message;
pub mod note;
pub mod policy;
pub mod receipt;
pub mod strict;
mod time;
pub mod tlog;
pub mod tlog_proof;
pub mod witness_protocol;

pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
pub use time::now_ms;
/// The node's X25519 public key, which envelopes are sealed to.
pub use x25519_dalek::PublicKey as EncryptionPublicKey;

/// The protocol identifier served in `GET /v1/node`.
pub const PROTOCOL: &str = "sealchain/v1";

/// A SHA-256 output: leaf hashes, Merkle roots, block hashes.
pub type Hash = [u8; 32];

/// Blocks hold this many messages unless the node is configured otherwise.
pub const DEFAULT_BLOCK_SIZE: u32 = 100;

/// Ed25519 signature with a domain tag: `Sign(sk, tag || 0x00 || data)`.
///
/// Every signature in the protocol is made this way, with a distinct tag per
/// purpose, so that a signature made for one purpose never verifies for
/// another.
pub(crate) fn sign_tagged(key: &SigningKey, tagged_input: &[u8]) -> Signature {
    use ed25519_dalek::Signer;
    key.sign(tagged_input)
}
