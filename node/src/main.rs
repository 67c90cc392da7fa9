//! `sealchain-node`: see `sealchain-node --help`.

use clap::Parser;
use sealchain_node::config::{Cli, Command, LogFormat};
use sealchain_node::startup::Application;
use sealchain_node::{keys, seed, telemetry};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealchain-node: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Keygen { keys_dir }) => {
            let keys = keys::NodeKeys::create(&keys_dir)?;
            println!("created node keys in {}", keys_dir.display());
            println!("signing key (Ed25519):    {}", keys.signing_public_hex());
            println!("encryption key (X25519):  {}", keys.encryption_public_hex());
            Ok(())
        }
        Some(Command::Seed(args)) => {
            // Warnings only: a line per sealed block would be 100,000 lines
            // for ten million messages.
            telemetry::init_with_default(LogFormat::Text, "warn");
            let config = args.into_config()?;
            let bar = indicatif::ProgressBar::new(config.messages);
            if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("seeding [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            let seeded = seed::seed(&config, &|n| bar.inc(n))?;
            bar.finish_and_clear();
            let secs = seeded.elapsed.as_secs_f64();
            println!(
                "seeded {} messages in {secs:.1} s ({:.0} messages/s); the chain holds {} messages in {} sealed blocks",
                seeded.messages,
                seeded.messages as f64 / secs.max(1e-9),
                seeded.next_seq,
                seeded.blocks
            );
            Ok(())
        }
        None => {
            let config = cli.serve.into_config()?;
            telemetry::init(config.log_format);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async {
                let app = Application::build(config).await?;
                app.run_until_stopped().await
            })
        }
    }
}
