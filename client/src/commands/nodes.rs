//! `sealchain nodes`: the pinned nodes of the known-nodes file.

use serde::Serialize;

use crate::global::Global;
use crate::output::{emit, emit_json};
use crate::pin::{KnownNode, KnownNodes};

/// List or forget pinned nodes (the known-nodes file, like SSH's known_hosts).
///
/// Each node URL a command has talked to has a line with the node's signing
/// key, encryption key, block size and log origin, written on first contact
/// and checked on every later one. When a node's keys changed on purpose (a new node at
/// the same URL), `forget` removes its line so the next contact pins the new
/// keys. The audit checkpoint of a chain and the log checkpoint last seen
/// are kept apart, under the signing key: forgetting a node does not forget
/// what was audited or seen.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = "\
Examples:
  sealchain nodes list
  sealchain nodes forget http://127.0.0.1:8080")]
pub enum NodesCommand {
    /// Show every pinned node, with its line in the file.
    List,
    /// Remove the line of a node URL.
    Forget {
        /// The node's URL, as it was pinned.
        url: String,
    },
}

#[derive(Debug, Serialize)]
struct Listing {
    file: String,
    nodes: Vec<KnownNode>,
}

/// Runs `nodes`.
pub fn run(global: &Global, command: &NodesCommand) -> anyhow::Result<()> {
    let known = KnownNodes::new(global.known_nodes_file()?);
    match command {
        NodesCommand::List => {
            let nodes = known.entries()?;
            if global.json {
                return emit_json(&Listing {
                    file: known.file().display().to_string(),
                    nodes,
                });
            }
            let mut text = format!("{} ({} nodes)\n", known.file().display(), nodes.len());
            for n in &nodes {
                text.push_str(&format!(
                    "line {:<4} {}  signing {}  encryption {}  block size {}  origin {}\n",
                    n.line,
                    n.url,
                    n.signing_key,
                    n.encryption_key,
                    n.block_size,
                    n.origin.as_deref().unwrap_or("(not pinned yet)")
                ));
            }
            emit(&text)
        }
        NodesCommand::Forget { url } => {
            let removed = known.forget(url)?;
            if removed.is_empty() {
                anyhow::bail!("{url} is not pinned in {}", known.file().display());
            }
            if global.json {
                return emit_json(&Listing {
                    file: known.file().display().to_string(),
                    nodes: removed,
                });
            }
            emit(&format!(
                "forgot {url} (line {} of {}); the next contact pins its keys again\n",
                removed
                    .iter()
                    .map(|n| n.line.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                known.file().display()
            ))
        }
    }
}
