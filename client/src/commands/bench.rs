//! `sealchain bench`: how fast the node accepts messages.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::future::join_all;
use sealchain_shared::api::Receipt;
use sealchain_shared::message::check_topic;
use sealchain_shared::{EncryptionPublicKey, SigningKey, keys};
use serde::Serialize;

use crate::connect::connect;
use crate::global::Global;
use crate::output::{emit, emit_json, ms};
use crate::progress;
use crate::sealing::{Sealed, check_receipt, seal_to};
use crate::stats::{Codes, Latencies, LatencySummary, failure_code};

/// Measure how many messages per second the node accepts.
///
/// First, before any timing, builds and seals --messages envelopes from
/// --clients fresh identities (kept in memory only), spread over all CPU
/// cores, with a progress bar. Then sends them as fast as the node accepts
/// them over --concurrency connections, each connection sending its next
/// message as soon as the previous one is answered. Reports accepted
/// messages per second, latency p50/p90/p99/max (HDR histogram), and errors
/// by code. Every receipt is checked afterwards (node signature, leaf
/// hash), outside the timing.
///
/// Errors (e.g. 503 unavailable under overload) are reported, not fatal; the
/// exit status is non-zero only if nothing was accepted or a receipt failed
/// its check.
///
/// --floor measures, without any node, the CPU time the node's per-message
/// crypto takes on one core of this machine (HPKE open, strict signature
/// verification, receipt signature): the floor no node can go below.
/// --save-envelopes seals the messages and writes them to a file instead of
/// sending them, for other load generators (scripts/bench.sh replays them
/// with wrk).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain bench --messages 2000 --concurrency 16
  sealchain bench --messages 10000 --concurrency 64 --clients 100 --json
  sealchain bench --floor
  sealchain bench --messages 200000 --clients 100 --save-envelopes envelopes.jsonl")]
pub struct Args {
    /// Messages to send.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub messages: u64,
    /// Concurrent connections (requests in flight).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Fresh client identities the messages are spread over.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub clients: u32,
    /// Bytes of padding in each message's body (message size).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_048_576))]
    pub body_bytes: u32,
    /// Topic of the messages.
    #[arg(long, default_value = "bench", value_name = "TOPIC")]
    pub topic: String,
    /// Measure the per-message crypto floor on one core instead (no node
    /// is contacted; --messages distinct envelopes are cycled, at most
    /// 10,000).
    #[arg(long, conflicts_with_all = ["concurrency", "save_envelopes"])]
    pub floor: bool,
    /// Seal the messages and write them to FILE, one envelope JSON a line,
    /// instead of sending them; the client ids go to FILE.clients, one hex
    /// id a line (to register them with an allowlist node).
    #[arg(long, value_name = "FILE", conflicts_with = "concurrency")]
    pub save_envelopes: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    node: String,
    messages: u64,
    concurrency: u32,
    clients: u32,
    body_bytes: u32,
    seal_seconds: f64,
    elapsed_seconds: f64,
    accepted: u64,
    accepted_per_second: f64,
    errors: u64,
    errors_by_code: Codes,
    bad_receipts: u64,
    latency_ms: LatencySummary,
}

#[derive(Debug, Default)]
struct Outcome {
    receipts: Vec<(Receipt, sealchain_shared::Hash)>,
    errors: Codes,
    first_error: Option<String>,
    latencies: Latencies,
}

/// Runs `bench`.
pub async fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    check_topic(&args.topic).context("--topic")?;
    if args.floor {
        let count = usize::try_from(args.messages.min(10_000))?;
        let floor = crate::floor::measure(count, usize::try_from(args.body_bytes)?)?;
        return if global.json {
            emit_json(&floor)
        } else {
            emit(&crate::floor::describe(&floor))
        };
    }
    let concurrency = usize::try_from(args.concurrency)?;
    let node = connect(global, concurrency).await?;

    let sealing_started = Instant::now();
    let (identities, sealed) = seal_all(
        &node.info.signing_key.0,
        &node.encryption_key,
        args,
        usize::try_from(args.messages)?,
    )?;
    let seal_seconds = sealing_started.elapsed().as_secs_f64();
    if let Some(path) = &args.save_envelopes {
        return save(path, &identities, &sealed, seal_seconds);
    }

    let queue = Rc::new(RefCell::new(VecDeque::from(sealed)));
    let outcome = Rc::new(RefCell::new(Outcome::default()));
    let bar = progress::counter(args.messages, "sending");
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (queue, outcome, client, bar) = (queue.clone(), outcome.clone(), node.client.clone(), bar.clone());
        async move {
            loop {
                let next = queue.borrow_mut().pop_front();
                let Some(sealed) = next else { break };
                let sent = Instant::now();
                let answer = client.submit_raw(sealed.envelope_json).await;
                let latency = sent.elapsed();
                let mut o = outcome.borrow_mut();
                match answer {
                    Ok(receipt) => {
                        o.latencies.record(latency);
                        o.receipts.push((receipt, sealed.leaf_hash));
                    }
                    Err(e) => {
                        o.first_error.get_or_insert_with(|| e.to_string());
                        o.errors.add(failure_code(&e));
                    }
                }
                bar.inc(1);
            }
        }
    });
    join_all(workers).await;
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let outcome = outcome.take();
    let mut bad_receipts = 0;
    let mut first_bad = None;
    for (receipt, leaf_hash) in &outcome.receipts {
        if let Err(e) = check_receipt(&node, receipt, leaf_hash) {
            bad_receipts += 1;
            first_bad.get_or_insert_with(|| format!("{e:#}"));
        }
    }
    let accepted = outcome.receipts.len() as u64;
    let report = Report {
        node: node.client.base().to_owned(),
        messages: args.messages,
        concurrency: args.concurrency,
        clients: args.clients,
        body_bytes: args.body_bytes,
        seal_seconds,
        elapsed_seconds: elapsed,
        accepted,
        accepted_per_second: if elapsed > 0.0 { accepted as f64 / elapsed } else { 0.0 },
        errors: outcome.errors.total(),
        errors_by_code: outcome.errors.clone(),
        bad_receipts,
        latency_ms: outcome.latencies.summary(),
    };
    if global.json {
        emit_json(&report)?;
    } else {
        emit(&describe(&report, &outcome))?;
    }
    if let Some(e) = first_bad {
        bail!("{bad_receipts} receipts failed their check; first: {e}");
    }
    if accepted == 0 {
        bail!(
            "the node accepted none of the {} messages; first error: {}",
            args.messages,
            outcome.first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

fn describe(r: &Report, o: &Outcome) -> String {
    let l = &o.latencies;
    let mut text = format!(
        "bench: {} messages from {} clients over {} connections to {}\n\
         sealed     {} envelopes in {:.2} s (before timing)\n\
         accepted   {} in {:.2} s: {:.0} messages/s\n",
        r.messages,
        r.clients,
        r.concurrency,
        r.node,
        r.messages,
        r.seal_seconds,
        r.accepted,
        r.elapsed_seconds,
        r.accepted_per_second,
    );
    if r.errors == 0 {
        text.push_str("errors     0\n");
    } else {
        text.push_str(&format!("errors     {} ({})\n", r.errors, r.errors_by_code.describe()));
        if let Some(e) = &o.first_error {
            text.push_str(&format!("           first: {e}\n"));
        }
    }
    text.push_str(&format!(
        "latency    p50 {}   p90 {}   p99 {}   max {}\n\
         receipts   {} checked, {} bad\n",
        ms(l.quantile_micros(0.50)),
        ms(l.quantile_micros(0.90)),
        ms(l.quantile_micros(0.99)),
        ms(l.max_micros()),
        r.accepted,
        r.bad_receipts,
    ));
    text
}

/// Writes the envelopes to `path` and the client ids to `path.clients`.
fn save(path: &std::path::Path, identities: &[SigningKey], sealed: &[Sealed], seal_seconds: f64) -> anyhow::Result<()> {
    use std::io::Write;
    let write = |path: &std::path::Path, lines: &mut dyn Iterator<Item = Vec<u8>>| -> anyhow::Result<()> {
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for mut line in lines {
            line.push(b'\n');
            out.write_all(&line)?;
        }
        out.flush().with_context(|| format!("writing {}", path.display()))
    };
    write(path, &mut sealed.iter().map(|s| s.envelope_json.clone()))?;
    let mut clients = path.as_os_str().to_owned();
    clients.push(".clients");
    let clients = std::path::PathBuf::from(clients);
    write(
        &clients,
        &mut identities
            .iter()
            .map(|k| keys::client_id(&k.verifying_key()).into_bytes()),
    )?;
    emit(&format!(
        "sealed     {} envelopes in {seal_seconds:.2} s into {} (client ids in {})\n",
        sealed.len(),
        path.display(),
        clients.display()
    ))
}

/// Seals `count` messages from `args.clients` fresh identities on every
/// core; message `i` comes from client `i % clients`.
fn seal_all(
    node_signing_key: &[u8; 32],
    node_encryption_key: &EncryptionPublicKey,
    args: &Args,
    count: usize,
) -> anyhow::Result<(Vec<SigningKey>, Vec<Sealed>)> {
    let identities = (0..args.clients)
        .map(|_| keys::generate_signing_key())
        .collect::<Result<Vec<SigningKey>, _>>()?;
    let pad = "x".repeat(usize::try_from(args.body_bytes)?);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count.max(1));
    let bar = progress::counter(count as u64, "sealing");
    let per_thread = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (identities, pad, bar) = (&identities, &pad, &bar);
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            let key = &identities[i % identities.len()];
                            let body = serde_json::json!({ "bench": i, "pad": pad });
                            let sealed = seal_to(node_signing_key, node_encryption_key, key, &args.topic, &body);
                            bar.inc(1);
                            sealed
                        })
                        .collect::<anyhow::Result<Vec<Sealed>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a sealing thread panicked")))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    bar.finish_and_clear();
    // Thread t sealed messages t, t + threads, …: interleave them back.
    let mut iters: Vec<_> = per_thread.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        if let Some(sealed) = iters[i % threads].next() {
            out.push(sealed);
        }
    }
    Ok((identities, out))
}
