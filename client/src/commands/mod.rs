//! One module per subcommand. Each has an `Args` (its command line, whose
//! doc comment is its `--help`) and an async `run`.

use crate::cli::{Cli, Command};

pub mod bench;
pub mod blocks;
pub mod checkpoint;
pub mod keygen;
pub mod monitor;
pub mod node_info;
pub mod nodes;
pub mod proof;
pub mod send;
pub mod simulate;
pub mod verify;

/// Runs the parsed command line (inside an actix system).
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match &cli.command {
        Command::Keygen(args) => keygen::run(global, args),
        Command::NodeInfo(args) => node_info::run(global, args).await,
        Command::Send(args) => send::run(global, args).await,
        Command::Simulate(args) => simulate::run(global, args).await,
        Command::Blocks(command) => blocks::run(global, command).await,
        Command::Verify(args) => verify::run(global, args).await,
        Command::Proof(args) => proof::run(global, args).await,
        Command::Checkpoint(args) => checkpoint::run(global, args).await,
        Command::Monitor(args) => monitor::run(global, args).await,
        Command::Bench(args) => bench::run(global, args).await,
        Command::Nodes(command) => nodes::run(global, command),
    }
}
