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
use crate::output::{emit, emit_json, ms};
use crate::progress;
use crate::receipts::ReceiptLog;
use crate::sealing::{check_receipt, seal};
use crate::stats::{Codes, Latencies, LatencySummary, failure_code};

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
/// Durations are a number and a unit: 250ms, 1s, 1.5s, 2m.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain simulate --keys ./client-keys --clients 10 --interval 1s --duration 60s
  sealchain simulate --clients 4 --interval 50ms --duration 5s --receipts ./receipts.jsonl --json")]
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
    blocks_before: u64,
    blocks_after: u64,
    blocks_sealed: u64,
    elapsed_ms: u128,
    receipts_file: Option<PathBuf>,
    stopped_early: bool,
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

    let node = Rc::new(connect(global, clients).await?);
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
        };
        actix_rt::spawn(client.run(first, args.interval, per_client))
    });
    let all = join_all(tasks.collect::<Vec<_>>());
    tokio::pin!(all);

    let mut redraw = interval(REDRAW);
    let mut last_poll = Instant::now();
    let mut blocks_now = blocks_before;
    let ctrl_c = stop_requested();
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
                bar.set_message(format!(
                    "sent {}  accepted {}  rejected {}  blocks sealed {}",
                    s.sent,
                    s.accepted,
                    s.rejected.total(),
                    blocks_now.saturating_sub(blocks_before)
                ));
            }
        }
    }
    let elapsed = start.elapsed();
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
                if let Some(log) = s.log.as_mut()
                    && let Err(e) = log.append(&receipt)
                {
                    s.log_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
            Err((e, attempts)) => {
                s.retries += u64::from(attempts - 1);
                let code = failure_code(&e);
                s.first_detail.entry(code.clone()).or_insert_with(|| e.to_string());
                s.rejected.add(code);
            }
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what `docker stop` and
/// `docker compose` send), so the run stops early and prints its summary.
async fn stop_requested() {
    use actix_rt::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = actix_rt::signal::ctrl_c() => {}
        () = terminated => {}
    }
}
