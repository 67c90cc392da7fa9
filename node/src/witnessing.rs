//! Pushing checkpoints to witnesses and gathering their cosignatures
//! (PROTOCOL §10; C2SP tlog-witness, tlog-cosignature).
//!
//! Follow one checkpoint: the [`crate::log::Publisher`] commits it and
//! hands it to this module through a `watch` channel (only the newest
//! matters). Every configured witness has its own task, so a slow or dead
//! witness delays nothing but its own cosignature. A task sends `POST
//! <url>/add-checkpoint` with `old <size>` — the size that witness last
//! cosigned, as far as the node knows — and the RFC 6962 consistency proof
//! from there, computed from the stored tiles. A `409` names the size the
//! witness holds: the task proves again from that size (a witness that
//! holds more than this checkpoint, or another root at this size, is
//! recorded as an error and asked again at the next checkpoint). A `200`
//! carries cosignature lines: those by the witness's configured key are
//! verified over the checkpoint, the newest is stored in
//! `witness_cosignatures`, and, under a lock of the checkpoint's row, the
//! checkpoint with every cosignature gathered so far is checked against the
//! quorum; once it holds, that note is stored in `checkpoints.cosigned_note`,
//! which `GET /checkpoint` serves. Failures are retried with backoff (0.5 s
//! doubling to 30 s) or at the next checkpoint.
//!
//! After a restart each task starts from the newest size its witness
//! cosigned according to the database (0 if none: the witness's `409`
//! then says where it stands), so nothing is asked twice and nothing is
//! forgotten. Node processes sharing a database share the cosignatures; a
//! witness's `409` resolves their races.

use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use diesel::Connection;
use diesel::pg::PgConnection;
use sealchain_shared::cosignature::CosignatureVerifier;
use sealchain_shared::note::{Note, NoteSignature, NoteVerifier};
use sealchain_shared::policy::{Policy, PolicyWitness};
use sealchain_shared::tlog;
use sealchain_shared::witness_protocol::{self, ADD_CHECKPOINT_PATH, AddCheckpoint};
use serde::Serialize;
use tokio::sync::watch;

use crate::db::models::CosignatureRow;
use crate::db::{DbPool, StoreError, repo};
use crate::log::TileStore;
use crate::metrics as m;

/// Most `409` answers in a row one push follows before giving up.
const MAX_CONFLICTS: usize = 3;
/// Longest wait before retrying a failed witness.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest answer body read from a witness.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// One witness of `--witness NAME=VKEY@URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessSpec {
    /// The operator's name for it (metrics, logs, status).
    pub name: String,
    /// Its cosignature key.
    pub verifier: CosignatureVerifier,
    /// Its submission prefix: requests go to `<url>/add-checkpoint`.
    pub url: String,
}

/// Parses `NAME=VKEY@URL`.
pub fn parse_witness(arg: &str) -> Result<WitnessSpec, String> {
    let (name, rest) = arg
        .split_once('=')
        .ok_or_else(|| format!("--witness {arg:?}: expected NAME=VKEY@URL"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(format!(
            "--witness {arg:?}: the name {name:?} must be letters, digits, '.', '_' or '-'"
        ));
    }
    let at = ["@http://", "@https://"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
        .ok_or_else(|| format!("--witness {name}: expected VKEY@URL with an http:// or https:// URL"))?;
    let (vkey, url) = (&rest[..at], &rest[at + 1..]);
    let verifier = CosignatureVerifier::parse(vkey).map_err(|e| format!("--witness {name}: {e}"))?;
    Ok(WitnessSpec {
        name: name.to_owned(),
        verifier,
        url: url.trim_end_matches('/').to_owned(),
    })
}

/// The witnesses, the quorum and the request timeout.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    /// The witnesses, in the order given.
    pub witnesses: Vec<WitnessSpec>,
    /// How many must cosign a checkpoint before `GET /checkpoint` serves it.
    pub quorum: usize,
    /// Deadline of one request to a witness.
    pub timeout: Duration,
}

impl WitnessConfig {
    /// Builds the configuration from the command line, refusing nonsense:
    /// a bad `--witness`, two witnesses with one name or one key, a quorum
    /// of 0 or above the number of witnesses, a quorum without witnesses.
    /// `None` without witnesses.
    pub fn from_args(args: &[String], quorum: Option<u32>, timeout: Duration) -> anyhow::Result<Option<Self>> {
        let witnesses = args
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| parse_witness(a.trim()).map_err(|e| anyhow::anyhow!(e)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if witnesses.is_empty() {
            if quorum.is_some() {
                bail!("--witness-quorum needs witnesses (--witness NAME=VKEY@URL)");
            }
            return Ok(None);
        }
        for (i, w) in witnesses.iter().enumerate() {
            for other in &witnesses[..i] {
                if other.name == w.name {
                    bail!("--witness: the name {} is given twice", w.name);
                }
                if other.verifier.key() == w.verifier.key() {
                    bail!("--witness: {} and {} have the same key", other.name, w.name);
                }
            }
        }
        let n = witnesses.len();
        let quorum = quorum.map_or(n, |k| k as usize);
        if !(1..=n).contains(&quorum) {
            bail!("--witness-quorum {quorum}: must be between 1 and the number of witnesses ({n})");
        }
        let config = Self {
            witnesses,
            quorum,
            timeout,
        };
        config.policy().context("--witness")?;
        Ok(Some(config))
    }

    /// The quorum as a policy: `quorum` of the witnesses.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        Policy::threshold(
            self.witnesses
                .iter()
                .map(|w| PolicyWitness {
                    name: w.name.clone(),
                    verifier: w.verifier.clone(),
                    url: Some(w.url.clone()),
                })
                .collect(),
            self.quorum,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The witnesses' verifier keys, in order.
    pub fn vkeys(&self) -> Vec<String> {
        self.witnesses.iter().map(|w| w.verifier.to_vkey()).collect()
    }
}

/// A checkpoint the publisher committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its tree size.
    pub size: u64,
    /// The signed note, as stored.
    pub note: String,
}

/// What one witness last did (`GET /v1/log/witnesses`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WitnessStatus {
    /// The operator's name for it.
    pub name: String,
    /// Its verifier key.
    pub verifier_key: String,
    /// Its submission prefix.
    pub url: String,
    /// The newest tree size it cosigned, as far as the node knows.
    pub cosigned_size: Option<u64>,
    /// When the node last got its cosignature, Unix ms.
    pub last_success_at: Option<i64>,
    /// How long the last exchange took, ms.
    pub last_latency_ms: Option<u64>,
    /// Why the last exchange failed, if it did.
    pub last_error: Option<String>,
    /// Failed exchanges since the last success.
    pub consecutive_failures: u32,
}

/// The witness statuses, shared with the HTTP handlers.
pub type Statuses = Arc<Mutex<Vec<WitnessStatus>>>;

/// The running witness tasks.
#[derive(Debug)]
pub struct Witnessing {
    system: actix_web::rt::System,
    thread: std::thread::JoinHandle<()>,
}

impl Witnessing {
    /// Starts one task per witness on a thread of its own (an actix system,
    /// which the HTTP client needs), following `checkpoints`.
    pub fn start(
        pool: DbPool,
        config: WitnessConfig,
        log: NoteVerifier,
        checkpoints: watch::Receiver<Option<Published>>,
        statuses: Statuses,
    ) -> anyhow::Result<Self> {
        let policy = config.policy()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("witnessing".into())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let _ = tx.send(actix_web::rt::System::current());
                    let ctx = Rc::new(Shared {
                        pool,
                        vkeys: config.vkeys(),
                        config,
                        policy,
                        log,
                        statuses,
                    });
                    for i in 0..ctx.config.witnesses.len() {
                        actix_web::rt::spawn(follow(ctx.clone(), i, checkpoints.clone()));
                    }
                });
                // Drives the tasks until `stop`.
                let _ = system.run();
            })
            .context("starting the witnessing thread")?;
        let system = rx.recv().context("the witnessing thread did not start")?;
        Ok(Self { system, thread })
    }

    /// Stops the tasks (requests in flight are abandoned; what was stored
    /// stays stored) and waits for the thread.
    pub fn stop(self) {
        self.system.stop();
        let _ = self.thread.join();
    }
}

/// The statuses before any exchange.
pub fn initial_statuses(config: &WitnessConfig) -> Statuses {
    Arc::new(Mutex::new(
        config
            .witnesses
            .iter()
            .map(|w| WitnessStatus {
                name: w.name.clone(),
                verifier_key: w.verifier.to_vkey(),
                url: w.url.clone(),
                cosigned_size: None,
                last_success_at: None,
                last_latency_ms: None,
                last_error: None,
                consecutive_failures: 0,
            })
            .collect(),
    ))
}

struct Shared {
    pool: DbPool,
    config: WitnessConfig,
    vkeys: Vec<String>,
    policy: Policy,
    log: NoteVerifier,
    statuses: Statuses,
}

/// Why one push failed.
#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error("no answer: {0}")]
    Unreachable(String),
    #[error("the witness holds size {0}, beyond this checkpoint; waiting for a larger one")]
    Ahead(u64),
    #[error("the witness cosigned another root at size {0}: the log's history differs from the one it saw")]
    OtherRoot(u64),
    #[error("{0} answers of 409 in a row")]
    Conflicts(usize),
    #[error("{status}: {reason}")]
    Refused { status: u16, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the database: {0}")]
    Store(String),
}

impl PushError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Ahead(_) | Self::OtherRoot(_) | Self::Conflicts(_) => "conflict",
            Self::Refused { .. } => "refused",
            Self::Invalid(_) => "invalid",
            Self::Store(_) => "store",
        }
    }
}

fn status_mut(ctx: &Shared, i: usize, f: impl FnOnce(&mut WitnessStatus)) {
    let mut statuses = ctx.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = statuses.get_mut(i) {
        f(s);
    }
}

async fn blocking<T: Send + 'static>(
    pool: &DbPool,
    f: impl FnOnce(&mut PgConnection) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, PushError> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
    .map_err(|e| PushError::Store(e.to_string()))?
    .map_err(|e| PushError::Store(e.to_string()))
}

/// One witness's task: push each newest checkpoint it has not cosigned.
async fn follow(ctx: Rc<Shared>, i: usize, mut checkpoints: watch::Receiver<Option<Published>>) {
    let spec = &ctx.config.witnesses[i];
    let label = [("witness", spec.name.clone())];
    let http = awc::Client::builder()
        .timeout(ctx.config.timeout)
        .disable_redirects()
        .finish();
    let vkey = ctx.vkeys[i].clone();
    // The newest size the node holds this witness's cosignature for, and
    // the size the witness holds as far as the node knows (what `old` says).
    let mut done: Option<u64> =
        match blocking(&ctx.pool, move |conn| Ok(repo::witness_cosigned_size(conn, &vkey)?)).await {
            Ok(size) => size.and_then(|s| u64::try_from(s).ok()),
            Err(e) => {
                tracing::warn!(witness = %spec.name, error = %e, "reading where the witness stands; asking it");
                None
            }
        };
    let mut holds = done;
    if let Some(size) = done {
        status_mut(&ctx, i, |s| s.cosigned_size = Some(size));
        metrics::gauge!(m::WITNESS_COSIGNED_SIZE, &label).set(size as f64);
    }
    let mut failures: u32 = 0;
    loop {
        let newest = checkpoints.borrow_and_update().clone();
        let due = newest.filter(|cp| done.is_none_or(|d| d < cp.size) && holds.is_none_or(|h| h <= cp.size));
        let Some(cp) = due else {
            if checkpoints.changed().await.is_err() {
                return;
            }
            continue;
        };
        let started = Instant::now();
        let result = push(&ctx, i, &http, &cp, holds.unwrap_or(0)).await;
        let latency = started.elapsed();
        metrics::histogram!(m::WITNESS_SECONDS, &label).record(latency.as_secs_f64());
        let outcome = match &result {
            Ok(_) => "cosigned",
            Err(e) => e.outcome(),
        };
        metrics::counter!(m::WITNESS_REQUESTS, "witness" => spec.name.clone(), "outcome" => outcome).increment(1);
        match result {
            Ok(size) => {
                (done, holds) = (Some(size), Some(size));
                failures = 0;
                metrics::gauge!(m::WITNESS_COSIGNED_SIZE, &label).set(size as f64);
                status_mut(&ctx, i, |s| {
                    s.cosigned_size = Some(size);
                    s.last_success_at = Some(sealchain_shared::now_ms());
                    s.last_latency_ms = Some(latency.as_millis() as u64);
                    s.last_error = None;
                    s.consecutive_failures = 0;
                });
                tracing::debug!(witness = %spec.name, size, ms = latency.as_millis() as u64, "cosigned");
            }
            Err(e) => {
                failures += 1;
                if let PushError::Ahead(size) | PushError::OtherRoot(size) = e {
                    // Another process (or history) got that far; only a
                    // checkpoint at least that large can be proven to it.
                    holds = Some(size);
                }
                let error = e.to_string();
                status_mut(&ctx, i, |s| {
                    s.last_latency_ms = Some(latency.as_millis() as u64);
                    s.last_error = Some(error.clone());
                    s.consecutive_failures = failures;
                });
                metrics::gauge!(m::WITNESS_FAILURES, &label).set(f64::from(failures));
                tracing::warn!(witness = %spec.name, url = %spec.url, size = cp.size, failures, error, "witness did not cosign");
                let backoff = Duration::from_millis(500)
                    .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
                    .min(MAX_BACKOFF);
                actix_web::rt::time::sleep(backoff).await;
                continue;
            }
        }
        metrics::gauge!(m::WITNESS_FAILURES, &label).set(0.0);
    }
}

/// Sends one checkpoint to witness `i`, proving from `old`, following its
/// `409`s; returns the size it cosigned.
async fn push(ctx: &Shared, i: usize, http: &awc::Client, cp: &Published, mut old: u64) -> Result<u64, PushError> {
    let spec = &ctx.config.witnesses[i];
    let text = Note::parse(cp.note.as_bytes())
        .map_err(|e| PushError::Invalid(format!("the stored checkpoint: {e}")))?
        .text;
    for _ in 0..MAX_CONFLICTS {
        let proof = if old == 0 || old >= cp.size {
            Vec::new()
        } else {
            let (from, to) = (old, cp.size);
            blocking(&ctx.pool, move |conn| {
                tlog::consistency_proof(&mut TileStore(conn), from, to)?
                    .map_err(|e| StoreError::Internal(anyhow::anyhow!(e)))
            })
            .await?
        };
        let body = AddCheckpoint {
            old,
            proof,
            checkpoint: cp.note.clone().into_bytes(),
        }
        .to_body();
        let exchange = async {
            let mut response = http
                .post(format!("{}{ADD_CHECKPOINT_PATH}", spec.url))
                .insert_header(("content-type", "text/plain; charset=utf-8"))
                .send_body(body)
                .await
                .map_err(|e| PushError::Unreachable(e.to_string()))?;
            let bytes = response
                .body()
                .limit(MAX_ANSWER_BYTES)
                .await
                .map_err(|e| PushError::Unreachable(format!("reading the answer: {e}")))?;
            Ok::<_, PushError>((response.status().as_u16(), bytes))
        };
        let (status, bytes) = actix_web::rt::time::timeout(ctx.config.timeout, exchange)
            .await
            .map_err(|_| PushError::Unreachable(format!("no answer within {:?}", ctx.config.timeout)))??;
        match status {
            200 => return cosigned(ctx, i, cp, &text, &bytes).await,
            409 => {
                let size = witness_protocol::parse_size_body(&bytes).map_err(|e| PushError::Invalid(e.0))?;
                if size > cp.size {
                    return Err(PushError::Ahead(size));
                }
                if size == old {
                    // The old size was right, so the root is what differs.
                    return Err(PushError::OtherRoot(size));
                }
                tracing::debug!(witness = %spec.name, old, size, "409: proving again from the witness's size");
                old = size;
            }
            status => {
                let reason = String::from_utf8_lossy(&bytes)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect();
                return Err(PushError::Refused { status, reason });
            }
        }
    }
    Err(PushError::Conflicts(MAX_CONFLICTS))
}

/// A `200`: keeps the witness's newest valid cosignature and updates the
/// checkpoint's quorum.
async fn cosigned(ctx: &Shared, i: usize, cp: &Published, text: &str, body: &[u8]) -> Result<u64, PushError> {
    let spec = &ctx.config.witnesses[i];
    let lines = witness_protocol::parse_cosignature_lines(body).map_err(|e| PushError::Invalid(e.0))?;
    let mut best: Option<(u64, NoteSignature)> = None;
    // Lines of other keys are ignored, as the spec says; one by this key
    // that does not verify is the witness's fault.
    for line in lines.into_iter().filter(|l| spec.verifier.claims(l)) {
        let t = spec
            .verifier
            .verify(text, &line)
            .map_err(|e| PushError::Invalid(e.to_string()))?;
        if best.as_ref().is_none_or(|(b, _)| t > *b) {
            best = Some((t, line));
        }
    }
    let (timestamp, line) = best.ok_or_else(|| {
        PushError::Invalid(format!(
            "200 without a cosignature by the configured key {}",
            spec.verifier.to_vkey()
        ))
    })?;
    let row = CosignatureRow {
        tree_size: i64::try_from(cp.size).map_err(|_| PushError::Invalid("tree size out of range".into()))?,
        witness: ctx.vkeys[i].clone(),
        line: line.line(),
        cosigned_at: i64::try_from(timestamp).unwrap_or(i64::MAX),
    };
    let (policy, log, vkeys, note) = (ctx.policy.clone(), ctx.log.clone(), ctx.vkeys.clone(), cp.note.clone());
    let reached = blocking(&ctx.pool, move |conn| record(conn, &row, &note, &vkeys, &policy, &log)).await?;
    if reached {
        metrics::gauge!(m::CHECKPOINT_WITNESSED_SIZE).set(cp.size as f64);
        tracing::debug!(size = cp.size, "checkpoint reached the witness quorum");
    }
    Ok(cp.size)
}

/// The checkpoint note with the gathered cosignature lines appended, in
/// the order of `vkeys` (the configured witnesses).
pub fn with_cosignatures(note: &str, rows: &[CosignatureRow], vkeys: &[String]) -> Result<Note, StoreError> {
    let mut note = Note::parse(note.as_bytes())
        .map_err(|e| StoreError::Internal(anyhow::anyhow!("a stored checkpoint does not parse: {e}")))?;
    for vkey in vkeys {
        for row in rows.iter().filter(|r| &r.witness == vkey) {
            note.signatures.push(
                NoteSignature::parse_line(&row.line)
                    .map_err(|e| StoreError::Internal(anyhow::anyhow!("a stored cosignature does not parse: {e}")))?,
            );
        }
    }
    Ok(note)
}

/// Stores a cosignature and, holding the checkpoint's row lock (so that two
/// witnesses answering at once do not overwrite each other's note), sets
/// the served note once the gathered cosignatures reach the quorum.
/// Returns whether they do.
fn record(
    conn: &mut PgConnection,
    row: &CosignatureRow,
    note: &str,
    vkeys: &[String],
    policy: &Policy,
    log: &NoteVerifier,
) -> Result<bool, StoreError> {
    conn.transaction(|conn| {
        repo::lock_checkpoint(conn, row.tree_size)?.ok_or(StoreError::NotFound)?;
        repo::upsert_cosignature(conn, row)?;
        let rows = repo::cosignatures(conn, row.tree_size, vkeys)?;
        let cosigned = with_cosignatures(note, &rows, vkeys)?;
        let reached = policy.check(&cosigned, Some(log)).is_ok();
        if reached {
            repo::set_cosigned_note(conn, row.tree_size, &cosigned.to_text())?;
        }
        Ok(reached)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sealchain_shared::SigningKey;

    use super::*;

    fn vkey(i: u8) -> String {
        CosignatureVerifier::new(
            &format!("w{i}.example"),
            SigningKey::from_bytes(&[i; 32]).verifying_key(),
        )
        .unwrap()
        .to_vkey()
    }

    fn config(args: &[String], quorum: Option<u32>) -> anyhow::Result<Option<WitnessConfig>> {
        WitnessConfig::from_args(args, quorum, Duration::from_secs(5))
    }

    #[test]
    fn witness_arguments_and_quorum_are_checked_at_start_up() {
        let w = |n: &str, i: u8, url: &str| format!("{n}={}@{url}", vkey(i));
        let three = vec![
            w("a", 1, "http://127.0.0.1:1"),
            w("b", 2, "https://w.example/prefix/"),
            w("c", 3, "http://user@host:2"),
        ];
        let c = config(&three, Some(2)).unwrap().unwrap();
        assert_eq!(c.quorum, 2);
        assert_eq!(c.witnesses[1].url, "https://w.example/prefix");
        assert_eq!(c.witnesses[2].url, "http://user@host:2");
        assert_eq!(c.policy().unwrap().describe_quorum(), "2 of a, b, c");
        // The default quorum is every witness.
        assert_eq!(config(&three, None).unwrap().unwrap().quorum, 3);
        assert!(config(&[], None).unwrap().is_none());
        let refused: Vec<(Vec<String>, Option<u32>, &str)> = vec![
            (three.clone(), Some(4), "between 1 and the number of witnesses (3)"),
            (three.clone(), Some(0), "between 1"),
            (vec![], Some(1), "needs witnesses"),
            (vec![w("a", 1, "http://x"), w("a", 2, "http://y")], None, "given twice"),
            (vec![w("a", 1, "http://x"), w("b", 1, "http://y")], None, "same key"),
            (vec![format!("a={}", vkey(1))], None, "http:// or https://"),
            (vec![w("a", 1, "ftp://x")], None, "http:// or https://"),
            (vec!["a=nonsense@http://x".into()], None, "malformed verifier key"),
            (vec![w("a b", 1, "http://x")], None, "must be letters"),
            (vec![vkey(1)], None, "expected NAME=VKEY@URL"),
        ];
        for (args, quorum, why) in refused {
            let e = config(&args, quorum).unwrap_err();
            assert!(format!("{e:#}").contains(why), "{args:?} {quorum:?}: {e:#}");
        }
        // A log key is not a witness key.
        let log = NoteVerifier::new("log.example/x", SigningKey::from_bytes(&[1; 32]).verifying_key()).unwrap();
        let e = config(&[format!("a={}@http://x", log.to_vkey())], None).unwrap_err();
        assert!(format!("{e:#}").contains("expected 0x04"), "{e:#}");
    }
}
