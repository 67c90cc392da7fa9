//! The options every subcommand takes, and where the client keeps its
//! state: the known-nodes file (pins), one audit checkpoint per chain, and
//! per log the newest checkpoint verified, in the user's data directory
//! unless an option or variable says otherwise.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sealchain_shared::api::Hex32;
use sealchain_shared::hexbytes::HexBytes;

use crate::duration::parse_duration;

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
    /// Where the client keeps its state (known nodes, audit checkpoints, the
    /// log checkpoints last seen).
    /// Default: the platform's data directory, e.g. ~/.local/share/sealchain.
    #[arg(long, global = true, env = "SEALCHAIN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Known-nodes file: a line with each node's keys and block size is
    /// added on first contact and checked on every later contact. Default:
    /// DATA_DIR/known_nodes.
    #[arg(long, global = true, env = "SEALCHAIN_PIN_FILE", value_name = "PATH")]
    pub pin_file: Option<PathBuf>,
    /// Neither read nor write the pin file (--node-key still applies).
    #[arg(long, global = true)]
    pub no_pin: bool,
    /// Resend a message this many times at most when the node answers 503
    /// (after its Retry-After) or does not answer; the same message is
    /// resent, so one the node stored gets its original receipt. 0: never.
    #[arg(long, global = true, env = "SEALCHAIN_RETRIES", default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,
    /// Trust this PEM CA certificate for an https:// node, beside the public
    /// web roots (a node with a private or self-signed certificate).
    #[arg(long, global = true, env = "SEALCHAIN_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Give up on a request after this long (e.g. 500ms, 30s, 2m).
    #[arg(long, global = true, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

impl Global {
    /// The data directory: `--data-dir`, else the platform's convention.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        directories::ProjectDirs::from("", "", "sealchain")
            .map(|d| d.data_dir().to_owned())
            .context("cannot find your home directory for the client's data; pass --data-dir or set SEALCHAIN_DATA_DIR")
    }

    /// The known-nodes file.
    pub fn known_nodes_file(&self) -> anyhow::Result<PathBuf> {
        match &self.pin_file {
            Some(file) => Ok(file.clone()),
            None => Ok(self.data_dir()?.join("known_nodes")),
        }
    }

    /// What this client remembers of the log of the node signing with
    /// `signing_key`: `DATA_DIR/tlog/<signing key>/`.
    pub fn log_dir(&self, signing_key: &Hex32) -> anyhow::Result<PathBuf> {
        Ok(self.data_dir()?.join("tlog").join(signing_key.to_hex()))
    }

    /// The default audit checkpoint of the chain signed by `signing_key`.
    pub fn checkpoint_file(&self, signing_key: &Hex32) -> anyhow::Result<PathBuf> {
        Ok(self.data_dir()?.join("checkpoints").join(format!("{signing_key}.json")))
    }
}
