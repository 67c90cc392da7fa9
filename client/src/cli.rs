//! The command line: global options and one subcommand per module of
//! [`crate::commands`].

use clap::{Parser, Subcommand};

use crate::commands::{bench, blocks, checkpoint, keygen, monitor, node_info, nodes, proof, send, simulate, verify};
pub use crate::global::Global;

/// sealchain: send signed, sealed messages to a sealchain node, query its
/// chain, and audit it.
///
/// Messages are signed with your client key (Ed25519), sealed to the node's
/// encryption key (HPKE) and answered with a receipt the node signs. Every
/// 100 (or --block-size) messages the node seals a block; `verify` checks the
/// whole chain and your receipts without trusting the node. The node also
/// publishes every message in a transparency log (C2SP checkpoints and
/// tiles): `checkpoint` and `monitor` follow it, `proof --out` writes a
/// proof bundle anyone can check offline with `proof --verify`.
///
/// Each node's keys are pinned on first contact in the known-nodes file of
/// your data directory (trust on first use, like SSH's known_hosts);
/// afterwards every command refuses a node whose keys differ, naming the
/// line to remove. Pass --node-key to pin the signing key you got out of
/// band; `sealchain nodes` lists and forgets pinned nodes.
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
  sealchain verify --receipts ./receipts.jsonl
  sealchain checkpoint
  sealchain monitor --entries
  sealchain proof 42 --out 42.tlog-proof";

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
    Checkpoint(checkpoint::Args),
    Monitor(monitor::Args),
    Bench(bench::Args),
    #[command(subcommand)]
    Nodes(nodes::NodesCommand),
}
