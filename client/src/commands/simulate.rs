//! `sealchain simulate`: the classic scenario — many clients, each with its
//! own identity, each sending one message per interval.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use actix_rt::time::{Instant, interval, interval_at};
use anyhow::{Context, bail};
use futures_util::future::join_all;
use sealchain_shared::SigningKey;
use sealchain_shared::message::check_topic;
use serde::Serialize;
use tokio::time::MissedTickBehavior;

use crate::api::{RetryPolicy, Submitted};
use crate::commands::keygen::load_or_create;
use crate::connect::{Node, connect, retry_policy};
use crate::duration::{format_duration, parse_duration};
use crate::global::Global;
use crate::output::one_line;
use crate::output::{emit, emit_json, ms};
use crate::progress;
use crate::receipts::{ReceiptLine, ReceiptLog};
use crate::sealing::{check_receipt, seal};
use crate::stats::{Codes, Latencies, LatencySummary, failure_code};
use crate::trusted_log::{POLL, TrustedLog, VerifiedCheckpoint, is_transient};

/// How often the live counters are redrawn and the block count polled.
const REDRAW: Duration = Duration::from_millis(200);
const POLL_BLOCKS: Duration = Duration::from_millis(1000);

/// Run many clients at once, each sending one message per interval.
///
/// Each of --clients clients has its own identity, loaded from --keys
/// (client-000.pem, client-001.pem, …; missing ones are created there). Each
/// sends one message every --interval for --duration, all concurrently: the
/// clients' schedules are spread evenly over one interval and follow the
/// clock (a slow answer does not delay the next message). Every receipt is
/// checked (node signature, leaf hash).
///
/// A live progress bar shows sent, accepted and rejected messages and the
/// blocks sealed so far (hidden when stderr is not a terminal). At the end a
/// summary gives sent, accepted, rejected by code, latency p50/p99/max and
/// the blocks sealed during the run. The exit status is non-zero if any
/// message was rejected or any receipt failed its check. Ctrl-C or SIGTERM stops
/// sending early and still prints the summary.
///
/// With --wait-inclusion every receipt is completed with a proof: one task
/// follows the log's checkpoints (each verified and proven consistent with
/// the one before), and each message, once a checkpoint covers it, gets its
/// inclusion proof checked against that checkpoint; the receipt line then
/// carries the tlog-proof bundle. The summary gives the time from receipt to
/// proof; a message not provable within --inclusion-timeout makes the run
/// fail.
///
/// Durations are a number and a unit: 250ms, 1s, 1.5s, 2m.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain simulate --keys ./client-keys --clients 10 --interval 1s --duration 60s
  sealchain simulate --clients 4 --interval 50ms --duration 5s --receipts ./receipts.jsonl --json
  sealchain simulate --clients 10 --duration 10s --wait-inclusion --receipts ./receipts.jsonl")]
pub struct Args {
    /// Directory of the client keys (created, with missing keys, if needed).
    #[arg(long, value_name = "DIR", default_value = "./client-keys")]
    pub keys: PathBuf,
    /// Number of clients.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: u32,
    /// Time between two messages of one client.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,
    /// How long each client sends.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,
    /// Topic of the messages.
    #[arg(long, default_value = "sensors/simulated", value_name = "TOPIC")]
    pub topic: String,
    /// Append every receipt to this file (created if missing).
    #[arg(long, value_name = "FILE")]
    pub receipts: Option<PathBuf>,
    /// Complete every receipt with its inclusion proof against a verified
    /// checkpoint of the log (recorded with the receipt).
    #[arg(long)]
    pub wait_inclusion: bool,
    /// How long --wait-inclusion waits, per message, for a checkpoint that
    /// covers it.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub inclusion_timeout: Duration,
}

/// The newest verified checkpoint, as the follower task sees it: `None`
/// before the first, `Err` once the log misbehaved.
type Latest = Result<Option<VerifiedCheckpoint>, String>;

/// What the clients share to prove their messages' inclusion.
struct Inclusion {
    log: TrustedLog,
    latest: tokio::sync::watch::Receiver<Latest>,
    timeout: Duration,
}

/// Follows the log's checkpoints until aborted; stops at the first
/// misbehaviour (an unreachable node is asked again).
async fn follow(log: TrustedLog, tx: tokio::sync::watch::Sender<Latest>) {
    loop {
        match log.refresh().await {
            Ok(refreshed) => {
                let grown = tx
                    .borrow()
                    .as_ref()
                    .ok()
                    .and_then(Option::as_ref)
                    .map(VerifiedCheckpoint::size)
                    != Some(refreshed.latest.size());
                if grown {
                    tx.send_modify(|latest| *latest = Ok(Some(refreshed.latest)));
                }
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => {
                tx.send_modify(|latest| *latest = Err(one_line(&e)));
                return;
            }
        }
        actix_rt::time::sleep(POLL).await;
    }
}

/// Counters shared by the client tasks (all on one thread).
#[derive(Debug, Default)]
struct State {
    sent: u64,
    accepted: u64,
    retries: u64,
    rejected: Codes,
    first_detail: std::collections::BTreeMap<String, String>,
    bad_receipts: u64,
    first_bad_receipt: Option<String>,
    latencies: Latencies,
    proven: u64,
    not_proven: u64,
    first_not_proven: Option<String>,
    proof_latencies: Latencies,
    log: Option<ReceiptLog>,
    log_error: Option<String>,
}

/// The end-of-run summary (`--json` prints it as is).
#[derive(Debug, Serialize)]
struct Summary {
    node: String,
    clients: u32,
    interval_ms: u128,
    duration_ms: u128,
    messages_per_client: u64,
    sent: u64,
    accepted: u64,
    rejected: u64,
    rejected_by_code: Codes,
    /// Resends after a 503 or no answer (each message ends accepted or
    /// rejected all the same).
    retries: u64,
    bad_receipts: u64,
    latency_ms: LatencySummary,
    /// With --wait-inclusion: receipts completed with a verified inclusion
    /// proof, those that were not, and the time from receipt to proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    inclusion: Option<InclusionSummary>,
    blocks_before: u64,
    blocks_after: u64,
    blocks_sealed: u64,
    elapsed_ms: u128,
    receipts_file: Option<PathBuf>,
    stopped_early: bool,
}

#[derive(Debug, Serialize)]
struct InclusionSummary {
    proven: u64,
    not_proven: u64,
    after_receipt_ms: LatencySummary,
}

/// Runs `simulate`.
pub async fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    if args.interval.is_zero() {
        bail!("--interval must be longer than 0");
    }
    if args.duration < args.interval {
        bail!(
            "--duration ({}) must be at least --interval ({})",
            format_duration(args.duration),
            format_duration(args.interval)
        );
    }
    check_topic(&args.topic).context("--topic")?;
    let clients = usize::try_from(args.clients)?;
    let (keys, created) = load_or_create(&args.keys, clients)?;
    let log = args.receipts.as_deref().map(ReceiptLog::open).transpose()?;

    let node = Rc::new(connect(global, clients + 2).await?);
    let blocks_before = node.client.block_count().await.context("counting blocks")?;
    let per_client = u64::try_from(args.duration.as_nanos() / args.interval.as_nanos()).unwrap_or(u64::MAX);
    if created > 0 && !global.json {
        eprintln!("created {created} client key(s) in {}", args.keys.display());
    }

    let state = Rc::new(RefCell::new(State {
        log,
        ..State::default()
    }));
    let stop = Rc::new(Cell::new(false));
    let (inclusion, follower) = if args.wait_inclusion {
        let log = TrustedLog::remembered(global, &node)?;
        let (tx, latest) = tokio::sync::watch::channel(Ok(None));
        let follower = actix_rt::spawn(follow(log.clone(), tx));
        let inclusion = Inclusion {
            log,
            latest,
            timeout: args.inclusion_timeout,
        };
        (Some(Rc::new(inclusion)), Some(follower))
    } else {
        (None, None)
    };
    let bar = progress::timer(args.duration);
    let start = Instant::now();
    let tasks = keys.into_iter().enumerate().map(|(i, key)| {
        // Spread the clients' first messages evenly over one interval.
        let first = start + args.interval.mul_f64(i as f64 / clients as f64);
        let client = Client {
            index: i,
            key: Rc::new(key),
            node: node.clone(),
            state: state.clone(),
            stop: stop.clone(),
            topic: Rc::from(args.topic.as_str()),
            retry: retry_policy(global),
            inclusion: inclusion.clone(),
        };
        actix_rt::spawn(client.run(first, args.interval, per_client))
    });
    let all = join_all(tasks.collect::<Vec<_>>());
    tokio::pin!(all);

    let mut redraw = interval(REDRAW);
    let mut last_poll = Instant::now();
    let mut blocks_now = blocks_before;
    let ctrl_c = crate::signals::stop_requested();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut all => break,
            _ = &mut ctrl_c, if !stop.get() => {
                stop.set(true);
                bar.println("stopping: waiting for the messages in flight");
            }
            _ = redraw.tick() => {
                if last_poll.elapsed() >= POLL_BLOCKS {
                    last_poll = Instant::now();
                    if let Ok(count) = node.client.block_count().await {
                        blocks_now = count;
                    }
                }
                // Keep the receipts file current, should the run be killed.
                let mut s = state.borrow_mut();
                if let Some(Err(e)) = s.log.as_mut().map(ReceiptLog::flush) {
                    s.log_error.get_or_insert_with(|| format!("{e:#}"));
                }
                bar.set_position(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
                let proven = if inclusion.is_some() { format!("  proven {}", s.proven) } else { String::new() };
                bar.set_message(format!(
                    "sent {}  accepted {}{proven}  rejected {}  blocks sealed {}",
                    s.sent,
                    s.accepted,
                    s.rejected.total(),
                    blocks_now.saturating_sub(blocks_before)
                ));
            }
        }
    }
    let elapsed = start.elapsed();
    if let Some(follower) = follower {
        follower.abort();
    }
    bar.finish_and_clear();

    let blocks_after = node.client.block_count().await.context("counting blocks")?;
    let mut s = state.borrow_mut();
    if let Some(log) = s.log.as_mut() {
        log.flush()?;
    }
    if let Some(e) = &s.log_error {
        bail!("{e}");
    }
    let summary = Summary {
        node: node.client.base().to_owned(),
        clients: args.clients,
        interval_ms: args.interval.as_millis(),
        duration_ms: args.duration.as_millis(),
        messages_per_client: per_client,
        sent: s.sent,
        accepted: s.accepted,
        rejected: s.rejected.total(),
        rejected_by_code: s.rejected.clone(),
        retries: s.retries,
        bad_receipts: s.bad_receipts,
        latency_ms: s.latencies.summary(),
        inclusion: inclusion.as_ref().map(|_| InclusionSummary {
            proven: s.proven,
            not_proven: s.not_proven,
            after_receipt_ms: s.proof_latencies.summary(),
        }),
        blocks_before,
        blocks_after,
        blocks_sealed: blocks_after.saturating_sub(blocks_before),
        elapsed_ms: elapsed.as_millis(),
        receipts_file: args.receipts.clone(),
        stopped_early: stop.get(),
    };
    if global.json {
        emit_json(&summary)?;
    } else {
        emit(&describe(&summary, &s, args))?;
    }
    if summary.rejected > 0 {
        bail!(
            "{} of {} messages were rejected ({})",
            summary.rejected,
            summary.sent,
            summary.rejected_by_code.describe()
        );
    }
    if summary.inclusion.as_ref().is_some_and(|i| i.not_proven > 0) {
        bail!(
            "{} accepted messages could not be proven included in the log; first: {}",
            s.not_proven,
            s.first_not_proven.as_deref().unwrap_or("?")
        );
    }
    if summary.bad_receipts > 0 {
        bail!(
            "{} receipts failed their check; first: {}",
            summary.bad_receipts,
            s.first_bad_receipt.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

fn describe(summary: &Summary, s: &State, args: &Args) -> String {
    let mut text = format!(
        "simulated {} clients x {} messages (one every {} for {}) against {}\n\
         sent       {}\n\
         accepted   {}\n",
        summary.clients,
        summary.messages_per_client,
        format_duration(args.interval),
        format_duration(args.duration),
        summary.node,
        summary.sent,
        summary.accepted,
    );
    if summary.rejected == 0 {
        text.push_str("rejected   0\n");
    } else {
        text.push_str(&format!(
            "rejected   {} ({})\n",
            summary.rejected,
            summary.rejected_by_code.describe()
        ));
        for (code, detail) in &s.first_detail {
            text.push_str(&format!("           first {code}: {detail}\n"));
        }
    }
    if summary.retries > 0 {
        text.push_str(&format!(
            "retries    {} (node busy or no answer; same message resent)\n",
            summary.retries
        ));
    }
    if summary.bad_receipts > 0 {
        text.push_str(&format!("bad receipts {}\n", summary.bad_receipts));
    }
    if let Some(inclusion) = &summary.inclusion {
        text.push_str(&format!(
            "inclusion  {} proven against verified checkpoints of the log{}; after the receipt p50 {}   p99 {}   max {}\n",
            inclusion.proven,
            if inclusion.not_proven > 0 {
                format!(", {} not", inclusion.not_proven)
            } else {
                String::new()
            },
            ms(s.proof_latencies.quantile_micros(0.50)),
            ms(s.proof_latencies.quantile_micros(0.99)),
            ms(s.proof_latencies.max_micros()),
        ));
    }
    text.push_str(&format!(
        "latency    p50 {}   p99 {}   max {}\n\
         blocks     {} sealed during the run ({} in the chain)\n",
        ms(s.latencies.quantile_micros(0.50)),
        ms(s.latencies.quantile_micros(0.99)),
        ms(s.latencies.max_micros()),
        summary.blocks_sealed,
        summary.blocks_after,
    ));
    if let Some(log) = &s.log {
        text.push_str(&format!(
            "receipts   {} appended to {}\n",
            log.written(),
            log.path().display()
        ));
    }
    text.push_str(&format!(
        "elapsed    {:.2} s{}\n",
        summary.elapsed_ms as f64 / 1000.0,
        if summary.stopped_early { " (stopped early)" } else { "" }
    ));
    text
}

/// One simulated client.
#[derive(Clone)]
struct Client {
    index: usize,
    key: Rc<SigningKey>,
    node: Rc<Node>,
    state: Rc<RefCell<State>>,
    stop: Rc<Cell<bool>>,
    topic: Rc<str>,
    retry: RetryPolicy,
    inclusion: Option<Rc<Inclusion>>,
}

impl Client {
    /// Sends `count` messages, one per tick from `first` on. Ticks follow
    /// the clock: each send runs as its own task, so a slow answer does not
    /// shift the schedule.
    async fn run(self, first: Instant, every: Duration, count: u64) {
        let mut ticker = interval_at(first, every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut in_flight = Vec::new();
        for n in 0..count {
            ticker.tick().await;
            if self.stop.get() {
                break;
            }
            in_flight.push(actix_rt::spawn(self.clone().send(n)));
        }
        join_all(in_flight).await;
    }

    async fn send(self, n: u64) {
        // A reading that moves a little from message to message.
        let reading = 20.0 + ((self.index as u64 * 7 + n) % 50) as f64 / 10.0;
        let body = serde_json::json!({"client": self.index, "n": n, "reading": reading});
        let sealed = match seal(&self.node, &self.key, &self.topic, &body) {
            Ok(sealed) => sealed,
            Err(e) => {
                let mut s = self.state.borrow_mut();
                s.sent += 1;
                s.rejected.add("local_error");
                s.first_detail
                    .entry("local_error".into())
                    .or_insert_with(|| format!("{e:#}"));
                return;
            }
        };
        self.state.borrow_mut().sent += 1;
        let started = Instant::now();
        let answer = self.node.client.submit_retrying(sealed.envelope_json, self.retry).await;
        let latency = started.elapsed();
        let receipt = {
            let mut s = self.state.borrow_mut();
            match answer {
                Ok(Submitted { receipt, attempts }) => {
                    s.retries += u64::from(attempts - 1);
                    s.accepted += 1;
                    s.latencies.record(latency);
                    if let Err(e) = check_receipt(&self.node, &receipt, &sealed.leaf_hash) {
                        s.bad_receipts += 1;
                        s.first_bad_receipt.get_or_insert_with(|| format!("{e:#}"));
                    }
                    receipt
                }
                Err((e, attempts)) => {
                    s.retries += u64::from(attempts - 1);
                    let code = failure_code(&e);
                    s.first_detail.entry(code.clone()).or_insert_with(|| e.to_string());
                    s.rejected.add(code);
                    return;
                }
            }
        };
        let seq = receipt.seq;
        let mut line = ReceiptLine::from(receipt);
        if let Some(inclusion) = &self.inclusion {
            let started = Instant::now();
            let proven = inclusion.prove(seq, &sealed.signed_message).await;
            let mut s = self.state.borrow_mut();
            match proven {
                Ok(bundle) => {
                    s.proven += 1;
                    s.proof_latencies.record(started.elapsed());
                    line.tlog_proof = Some(bundle);
                }
                Err(e) => {
                    s.not_proven += 1;
                    s.first_not_proven.get_or_insert_with(|| format!("seq {seq}: {e:#}"));
                }
            }
        }
        let mut s = self.state.borrow_mut();
        if let Some(log) = s.log.as_mut()
            && let Err(e) = log.append(&line)
        {
            s.log_error.get_or_insert_with(|| format!("{e:#}"));
        }
    }
}

impl Inclusion {
    /// Waits until the followed log covers `seq`, then proves the entry's
    /// inclusion against that checkpoint; the tlog-proof bundle's text.
    async fn prove(&self, seq: u64, entry: &[u8]) -> anyhow::Result<String> {
        let mut latest = self.latest.clone();
        let covering = |v: &Latest| match v {
            Ok(Some(cp)) => cp.size() > seq,
            Ok(None) => false,
            Err(_) => true,
        };
        let waited = actix_rt::time::timeout(self.timeout, latest.wait_for(covering)).await;
        let checkpoint = match waited {
            Err(_) => bail!(
                "no checkpoint covered it within {} of its receipt",
                format_duration(self.timeout)
            ),
            Ok(Err(_)) => bail!("the task following the log stopped"),
            Ok(Ok(value)) => match &*value {
                Ok(Some(cp)) => cp.clone(),
                Err(e) => bail!("{e}"),
                Ok(None) => bail!("no checkpoint yet"),
            },
        };
        let (bundle, _) = self.log.prove_in(seq, entry, checkpoint).await?;
        Ok(bundle.to_text())
    }
}
