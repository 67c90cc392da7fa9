//! `sealchain witness`: run a transparency-log witness (C2SP tlog-witness).
//! The CLI face of [`crate::witness`]: key files, flags, start-up.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sealchain_shared::cosignature::Cosigner;
use sealchain_shared::keys;
use sealchain_shared::note::NoteVerifier;
use serde::Serialize;

use crate::global::Global;
use crate::output::{emit, emit_json};
use crate::witness::store::Store;
use crate::witness::{Witness, server};

/// Run a witness for transparency logs: cosign a log's checkpoints only if
/// they are consistent with everything it cosigned before.
///
/// A witness (C2SP tlog-witness) follows one or more logs (their origin and
/// checkpoint key). A log sends it each new checkpoint with a consistency
/// proof from the checkpoint the witness cosigned last (POST
/// /add-checkpoint); the witness checks the log's signature and the proof,
/// stores the new checkpoint durably, and only then answers with its
/// cosignature (C2SP tlog-cosignature, Ed25519 cosignature/v1). A log that
/// shows two different histories can get a witness's cosignature on one of
/// them only, so readers who require cosignatures from a quorum of
/// independent witnesses (`sealchain verify --witness-policy`) cannot be
/// shown a fork.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = "\
Examples:
  sealchain witness keygen --key ./witness.pem --name witness.example/w1
  sealchain witness serve --key ./witness.pem --name witness.example/w1 --state ./witness-state \\
      --log 'log.example.com/sealchain=log.example.com/sealchain+ebc93979+AWaF…'")]
pub enum WitnessCommand {
    Keygen(KeygenArgs),
    Vkey(VkeyArgs),
    Serve(ServeArgs),
}

/// The witness's identity: its key file and key name.
#[derive(Debug, Clone, clap::Args)]
pub struct Identity {
    /// The witness's Ed25519 key file (PKCS#8 PEM, mode 0600).
    #[arg(long, env = "SEALCHAIN_WITNESS_KEY", value_name = "FILE")]
    pub key: PathBuf,
    /// The witness's key name, a schema-less URL such as
    /// witness.example/w1: it names the cosignature lines and is part of
    /// the key ID, so logs and policies must use the same name.
    #[arg(long, env = "SEALCHAIN_WITNESS_NAME", value_name = "NAME")]
    pub name: String,
}

/// Create a witness key and print its verifier key.
///
/// Writes a new Ed25519 key (PKCS#8 PEM, mode 0600; the directory is
/// created with mode 0700 if missing; an existing file is never
/// overwritten) and prints the verifier key string
/// `name+keyid+base64(0x04 || key)` that logs (`sealchain-node --witness`)
/// and policies (`witness` lines) are configured with.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  sealchain witness keygen --key ./witness.pem --name witness.example/w1")]
pub struct KeygenArgs {
    #[command(flatten)]
    pub identity: Identity,
}

/// Print the verifier key of an existing witness key.
///
/// Prints only the verifier key string, so scripts can hand it to a log:
/// `--witness "w1=$(sealchain witness vkey --key … --name …)@http://…"`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  sealchain witness vkey --key ./witness.pem --name witness.example/w1")]
pub struct VkeyArgs {
    #[command(flatten)]
    pub identity: Identity,
}

/// Serve the witness over HTTP.
///
/// POST /add-checkpoint answers exactly as C2SP tlog-witness says: 200 with
/// the cosignature line once the new state is on disk; 409 with the size
/// it last cosigned (text/x.tlog.size) when `old` is not that size, or the
/// size is the same with another root; 422 when the consistency proof
/// fails; 404 for a log it does not follow; 403 when no signature is by
/// the log's key; 400 for a malformed request or `old` above the
/// checkpoint's size. GET /checkpoint/ORIGIN serves the newest checkpoint
/// it cosigned for that log (for monitors); GET / its name, key and logs.
///
/// The state (an SQLite database in --state) is written and flushed to disk
/// before every answer; requests for one log are applied one at a time.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  sealchain witness serve --listen 127.0.0.1:7380 --state ./witness-state \\
      --key ./witness.pem --name witness.example/w1 \\
      --log 'log.example.com/sealchain=log.example.com/sealchain+ebc93979+AWaF…'")]
pub struct ServeArgs {
    #[command(flatten)]
    pub identity: Identity,
    /// Address to listen on (port 0 picks a free port).
    #[arg(
        long,
        env = "SEALCHAIN_WITNESS_LISTEN",
        default_value = "127.0.0.1:7380",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// Directory of the witness's state (created with mode 0700).
    #[arg(long, env = "SEALCHAIN_WITNESS_STATE", value_name = "DIR")]
    pub state: PathBuf,
    /// A log to follow: its origin and its checkpoint verifier key
    /// (`sealchain-node` logs it at start-up and serves it in GET /v1/node
    /// as verifier_key). Repeat for more logs, or for several keys of one
    /// log. In the environment, separate entries with spaces.
    #[arg(
        long = "log",
        env = "SEALCHAIN_WITNESS_LOGS",
        value_name = "ORIGIN=VKEY",
        required = true,
        value_delimiter = ' '
    )]
    pub logs: Vec<String>,
    /// HTTP worker threads.
    #[arg(long, env = "SEALCHAIN_WITNESS_WORKERS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
}

/// Runs `sealchain witness …`.
pub async fn run(global: &Global, command: &WitnessCommand) -> anyhow::Result<()> {
    match command {
        WitnessCommand::Keygen(args) => keygen(global, args),
        WitnessCommand::Vkey(args) => {
            let cosigner = load(&args.identity)?;
            emit(&format!("{}\n", cosigner.verifier().to_vkey()))
        }
        WitnessCommand::Serve(args) => serve(args).await,
    }
}

#[derive(Debug, Serialize)]
struct Created<'a> {
    key_file: &'a Path,
    name: &'a str,
    verifier_key: String,
}

fn keygen(global: &Global, args: &KeygenArgs) -> anyhow::Result<()> {
    let Identity { key, name } = &args.identity;
    let signing = keys::generate_signing_key()?;
    // The name is checked before anything is written.
    let cosigner = Cosigner::new(name, signing.clone()).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    if let Some(dir) = key.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        keys::create_key_dir(dir)?;
    }
    keys::save_signing_key(key, &signing)?;
    let created = Created {
        key_file: key,
        name,
        verifier_key: cosigner.verifier().to_vkey(),
    };
    if global.json {
        return emit_json(&created);
    }
    emit(&format!(
        "created {} (Ed25519, PKCS#8 PEM, mode 0600)\nname          {}\nverifier key  {}\n",
        key.display(),
        created.name,
        created.verifier_key
    ))
}

fn load(identity: &Identity) -> anyhow::Result<Cosigner> {
    let key = keys::load_signing_key(&identity.key)?;
    Cosigner::new(&identity.name, key).map_err(|e| anyhow::anyhow!("--name: {e}"))
}

/// Parses `--log ORIGIN=VKEY`.
pub fn parse_log(arg: &str) -> anyhow::Result<(String, NoteVerifier)> {
    let Some((origin, vkey)) = arg.split_once('=') else {
        bail!("--log {arg:?}: expected ORIGIN=VKEY");
    };
    if origin.is_empty() || origin.chars().any(char::is_whitespace) {
        bail!("--log {arg:?}: the origin must be non-empty, without spaces");
    }
    let key = NoteVerifier::parse(vkey).map_err(|e| anyhow::anyhow!("--log {origin}: {e}"))?;
    Ok((origin.to_owned(), key))
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let cosigner = load(&args.identity)?;
    let logs = args
        .logs
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| parse_log(l))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if logs.is_empty() {
        bail!("--log: follow at least one log");
    }
    let store = Store::open(&args.state)?;
    let listener = TcpListener::bind(&args.listen).with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let mut text = format!(
        "witness       {}\nverifier key  {}\n",
        cosigner.verifier().name(),
        cosigner.verifier().to_vkey()
    );
    for (origin, key) in &logs {
        let size = store.get(origin)?.map(|s| s.size);
        text.push_str(&format!(
            "follows       {origin} ({}; {})\n",
            key.to_vkey(),
            size.map_or("nothing cosigned yet".to_owned(), |s| format!(
                "cosigned up to size {s}"
            ))
        ));
    }
    text.push_str(&format!("listening on http://{address}\n"));
    emit(&text)?;
    let witness = Witness::new(cosigner, logs, store);
    server::serve(listener, witness, args.workers as usize)?
        .await
        .context("the witness's HTTP server failed")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn log_arguments_are_checked() {
        let key = sealchain_shared::SigningKey::from_bytes(&[1; 32]);
        let vkey = NoteVerifier::new("log.example/x", key.verifying_key())
            .unwrap()
            .to_vkey();
        let (origin, parsed) = parse_log(&format!("log.example/x={vkey}")).unwrap();
        assert_eq!((origin.as_str(), parsed.to_vkey()), ("log.example/x", vkey.clone()));
        for bad in [
            vkey.clone(),
            format!("={vkey}"),
            "log.example/x=nonsense".into(),
            format!("a b={vkey}"),
        ] {
            assert!(parse_log(&bad).is_err(), "{bad}");
        }
        // A witness key is not a log key.
        let cosigner = Cosigner::new("w.example", key).unwrap();
        let e = parse_log(&format!("log.example/x={}", cosigner.verifier().to_vkey())).unwrap_err();
        assert!(e.to_string().contains("expected 0x01"), "{e}");
    }
}
