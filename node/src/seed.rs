//! `sealchain-node seed`: builds a long chain quickly, for benchmarks.
//!
//! The messages are real: each is built, signed by one of `--clients`
//! fresh client keys, on every core. What is skipped is only what a node
//! cannot tell apart afterwards: the HPKE envelope, the HTTP request and
//! the receipt. The messages then go through the writer's own transaction
//! body ([`crate::ingest::writer::write_batch`]) in batches of `--batch`:
//! the same sender numbering, seq assignment, duplicate check, inserts, log extension (tile
//! hashes, compact range) and block sealing as a running node, so the
//! chain, its log and its tiles are exactly what a node would have built
//! and pass `sealchain verify` and the log checks.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use diesel::Connection;
use sealchain_shared::message::MessageBuilder;
use sealchain_shared::{SigningKey, keys};

use crate::db::{self, models::NewChainState, repo};
use crate::ingest::validate::Verified;
use crate::ingest::writer::{self, Lookup, Outcome};
use crate::keys::NodeKeys;

/// Add --messages signed messages to the chain at --database-url as fast
/// as Postgres takes them (long chains for benchmarks).
///
/// The messages are signed by --clients fresh client keys on every core
/// and committed through the writer's own transaction in batches of
/// --batch, so the chain, its log (tile hashes, compact range) and its
/// blocks are exactly what a running node builds; only the envelopes,
/// HTTP and receipts are skipped. Run it with no node serving the same
/// database. The chain and the node keys are created if missing (the
/// database itself must exist).
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// Postgres URL of the chain to extend.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Directory of the node's key files (created with new keys if empty).
    #[arg(long, env = "SEALCHAIN_KEYS_DIR", default_value = "./node-keys")]
    pub keys_dir: std::path::PathBuf,
    /// Messages per block (must match an existing chain).
    #[arg(long, env = "SEALCHAIN_BLOCK_SIZE", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub block_size: u32,
    /// Messages to add.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub messages: u64,
    /// Client keys the messages come from.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub clients: u32,
    /// Messages per writer transaction.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..=8192))]
    pub batch: u64,
    /// Bytes of padding in each message's body.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=16_000))]
    pub body_bytes: u64,
}

impl SeedArgs {
    /// The run's settings.
    pub fn into_config(self) -> anyhow::Result<SeedConfig> {
        Ok(SeedConfig {
            database_url: self.database_url,
            keys_dir: self.keys_dir,
            block_size: self.block_size,
            messages: self.messages,
            clients: self.clients,
            batch: usize::try_from(self.batch)?,
            body_bytes: usize::try_from(self.body_bytes)?,
        })
    }
}

/// Settings of a seed run.
#[derive(Debug, Clone)]
pub struct SeedConfig {
    /// The database.
    pub database_url: String,
    /// The node's key directory (created if empty).
    pub keys_dir: std::path::PathBuf,
    /// Messages per block; must match an existing chain.
    pub block_size: u32,
    /// Messages to add.
    pub messages: u64,
    /// Client keys the messages come from.
    pub clients: u32,
    /// Messages per writer transaction.
    pub batch: usize,
    /// Padding bytes in each message's body.
    pub body_bytes: usize,
}

/// What a seed run did.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    /// Messages added.
    pub messages: u64,
    /// The chain's message count afterwards.
    pub next_seq: i64,
    /// Sealed blocks afterwards.
    pub blocks: i64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Builds `messages` signed messages in batches on every core but one and
/// commits them through the writer's transaction on the calling thread;
/// `progress` is told each batch's size.
pub fn seed(config: &SeedConfig, progress: &(dyn Fn(u64) + Sync)) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let (node, created) = NodeKeys::load_or_create(&config.keys_dir)?;
    if created {
        tracing::info!(keys_dir = %config.keys_dir.display(), "created new node keys");
    }
    let mut conn = db::connect_with_retry(&config.database_url, Duration::from_secs(10))?;
    db::run_migrations(&mut conn)?;
    let signing_key = node.signing.verifying_key().to_bytes();
    let block_size = i32::try_from(config.block_size)?;
    let origin = sealchain_shared::note::default_origin(&node.signing.verifying_key());
    let state = repo::init_chain_state(
        &mut conn,
        &NewChainState {
            block_size,
            signing_key: &signing_key,
            created_at: sealchain_shared::now_ms(),
            origin: &origin,
        },
    )?;
    if state.block_size != block_size || state.signing_key != signing_key {
        bail!(
            "the database's chain was built with block size {} by node key {}; seed it with that block size and \
             those keys, or use another database",
            state.block_size,
            hex::encode(&state.signing_key)
        );
    }
    if crate::log::catch_up(&mut conn)? > 0 {
        tracing::info!("the log caught up with the chain");
    }

    let clients = (0..config.clients.max(1))
        .map(|_| keys::generate_signing_key())
        .collect::<Result<Vec<SigningKey>, _>>()?;
    let builder = MessageBuilder::new(
        signing_key,
        "seed",
        &serde_json::json!({"reading": 21.5, "unit": "C", "pad": "x".repeat(config.body_bytes)}),
    )?;
    let batch = config.batch.max(1) as u64;
    let batches = config.messages.div_ceil(batch);
    let signers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1) as u64;
    let mut added = 0u64;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Two batches in flight per signer at most: memory stays bounded.
        let (tx, rx) = mpsc::sync_channel::<anyhow::Result<Vec<Verified>>>(2 * signers as usize);
        for t in 0..signers {
            let (tx, clients, builder) = (tx.clone(), &clients, &builder);
            scope.spawn(move || {
                let mut b = t;
                while b < batches {
                    let count = batch.min(config.messages - b * batch);
                    if tx.send(sign_batch(builder, clients, b * batch, count)).is_err() {
                        return;
                    }
                    b += signers;
                }
            });
        }
        drop(tx);
        let key = node.signing.clone();
        let mut senders = writer::SenderIds::default();
        for messages in rx {
            let messages = messages?;
            let refs: Vec<&Verified> = messages.iter().collect();
            let ids = senders
                .number(&mut conn, &refs)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("numbering the batch's senders")?;
            let outcomes = conn
                .transaction(|conn| writer::write_batch(conn, &key, config.block_size, &refs, &ids, Lookup::OnConflict))
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("writing a batch")?
                .outcomes;
            if let Some(other) = outcomes.iter().find(|o| !matches!(o, Outcome::Accepted { .. })) {
                bail!("a seeded message was not accepted: {other:?}");
            }
            added += refs.len() as u64;
            progress(refs.len() as u64);
        }
        Ok(())
    })?;
    let state = repo::chain_state(&mut conn)?;
    Ok(Seeded {
        messages: added,
        next_seq: state.next_seq,
        blocks: state.block_count,
        elapsed: started.elapsed(),
    })
}

/// Signs `count` messages, number `first..`, each from client `i % clients`.
/// Nonces look random, as real ones do (so the (sender, nonce) index has
/// the layout a real chain gives it), and are unique: a hash of the run's
/// first client key and the message number.
fn sign_batch(
    builder: &MessageBuilder,
    clients: &[SigningKey],
    first: u64,
    count: u64,
) -> anyhow::Result<Vec<Verified>> {
    use sha2::{Digest, Sha256};
    let ts = sealchain_shared::now_ms();
    let salt = clients[0].verifying_key().to_bytes();
    (first..first + count)
        .map(|i| {
            let digest = Sha256::new()
                .chain_update(salt)
                .chain_update(i.to_be_bytes())
                .finalize();
            let nonce: [u8; 16] = digest[..16].try_into()?;
            let key = &clients[usize::try_from(i)? % clients.len()];
            let signed = builder.clone().nonce(nonce).ts(ts).sign(key)?;
            Ok(Verified {
                sender: key.verifying_key().to_bytes(),
                nonce,
                ts,
                signature: signed.signature,
                leaf_hash: signed.leaf_hash(),
                message_bytes: signed.message_bytes,
            })
        })
        .collect()
}
