//! The command line: global options and one subcommand per module of
//! [`crate::commands`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sealchain_shared::hexbytes::HexBytes;

use crate::commands::{bench, blocks, keygen, node_info, proof, send, simulate, verify};
use crate::duration::parse_duration;

/// Default pin file, relative to the working directory.
pub const DEFAULT_PIN_FILE: &str = ".sealchain-pin.json";

/// sealchain: send signed, sealed messages to a sealchain node, query its
/// chain, and audit it.
///
/// Messages are signed with your client key (Ed25519), sealed to the node's
/// encryption key (HPKE) and answered with a receipt the node signs. Every
/// 100 (or --block-size) messages the node seals a block; `verify` checks the
/// whole chain and your receipts without trusting the node.
///
/// The node's keys are pinned on first contact in ./.sealchain-pin.json
/// (trust on first use); afterwards every command refuses a node whose keys
/// differ. Pass --node-key to pin the signing key you got out of band.
#[derive(Debug, Parser)]
#[command(name = "sealchain", version, about, long_about, after_help = EXAMPLES)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  sealchain keygen --out ./client-keys
  sealchain node-info
  sealchain send --key ./client-keys/client-000.pem --topic sensors/temp --body '{\"reading\": 21.5}'
  sealchain simulate --keys ./client-keys --clients 10 --interval 1s --duration 60s
  sealchain verify --receipts ./receipts.jsonl";

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The node's base URL.
    #[arg(
        long,
        global = true,
        env = "SEALCHAIN_NODE",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub node: String,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Pin the node's Ed25519 signing key (64 hex characters): refuse a node
    /// that signs with another key.
    #[arg(long, global = true, env = "SEALCHAIN_NODE_KEY", value_name = "HEX")]
    pub node_key: Option<HexBytes<32>>,
    /// Pin file: written with the node's signing and encryption keys on first
    /// contact, checked on every later contact.
    #[arg(
        long,
        global = true,
        env = "SEALCHAIN_PIN_FILE",
        default_value = DEFAULT_PIN_FILE,
        value_name = "PATH"
    )]
    pub pin_file: PathBuf,
    /// Neither read nor write the pin file (--node-key still applies).
    #[arg(long, global = true)]
    pub no_pin: bool,
    /// Resend a message this many times at most when the node answers 503
    /// (after its Retry-After) or does not answer; the same message is
    /// resent, so one the node stored gets its original receipt. 0: never.
    #[arg(long, global = true, env = "SEALCHAIN_RETRIES", default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,
    /// Give up on a request after this long (e.g. 500ms, 30s, 2m).
    #[arg(long, global = true, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

/// The subcommands. Each one's help is the doc comment of its `Args` in
/// `commands/<name>.rs`.
#[derive(Debug, Subcommand)]
pub enum Command {
    Keygen(keygen::Args),
    NodeInfo(node_info::Args),
    Send(send::Args),
    Simulate(simulate::Args),
    /// Read blocks: count, get INDEX, head, hash HASH, prev HASH, list.
    ///
    /// Each block shown is checked against the node's pinned signing key
    /// (header hash, node signature, Merkle root and every message
    /// signature; `list` checks headers and the links between them). A block
    /// that does not verify is still printed, and the command then fails
    /// naming what is wrong. For an audit of the whole chain use `sealchain
    /// verify`.
    #[command(subcommand, after_help = blocks::EXAMPLES)]
    Blocks(blocks::BlocksCommand),
    Verify(verify::Args),
    Proof(proof::Args),
    Bench(bench::Args),
}
