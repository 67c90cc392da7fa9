//! Prometheus metrics (`GET /metrics`).
//!
//! | metric | kind | meaning |
//! | --- | --- | --- |
//! | `sealchain_messages_accepted_total` | counter | messages committed and answered 202 |
//! | `sealchain_messages_resent_total` | counter | resends of stored messages, answered 200 with the original receipt |
//! | `sealchain_messages_rejected_total{code}` | counter | rejections by problem `code` |
//! | `sealchain_ingest_duration_seconds` | histogram | request arrival to receipt, accepted messages |
//! | `sealchain_writer_batch_size` | histogram | messages per writer transaction |
//! | `sealchain_writer_commit_duration_seconds` | histogram | writer transaction time |
//! | `sealchain_blocks_sealed_total` | counter | blocks sealed by this process |
//! | `sealchain_ingest_queue_depth` | gauge | verified messages waiting for the writer |
//! | `sealchain_checkpoint_tree_size` | gauge | tree size of the newest checkpoint this process published |
//! | `sealchain_writer_alive` | gauge | 1 while the writer thread runs, 0 once it stopped |
//! | `sealchain_writer_consecutive_failures` | gauge | failed write attempts since the last success |
//! | `sealchain_event_readers` | gauge | readers of `GET /v1/events` in the live feed |
//! | `sealchain_event_readers_dropped_total` | counter | event readers dropped for falling behind |
//! | `sealchain_replica_reads_total{served}` | counter | reads tried on `--read-database-url`: `replica` (answered there), `primary_behind` (the replica had not replayed it yet), `primary_replica_failed` |
//! | `sealchain_checkpoint_witnessed_tree_size` | gauge | tree size of the newest checkpoint that reached the witness quorum |
//! | `sealchain_witness_cosigned_tree_size{witness}` | gauge | newest tree size the witness cosigned |
//! | `sealchain_witness_requests_total{witness,outcome}` | counter | exchanges with the witness by outcome: `cosigned`, `conflict`, `refused`, `unreachable`, `invalid`, `store` |
//! | `sealchain_witness_request_duration_seconds{witness}` | histogram | time of one exchange (with its 409 retries) |
//! | `sealchain_witness_consecutive_failures{witness}` | gauge | failed exchanges since the witness last cosigned |
//!
//! The `metrics` facade has one recorder per process; several nodes in one
//! process (the integration tests) share it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter of accepted messages.
pub const ACCEPTED: &str = "sealchain_messages_accepted_total";
/// Counter of resends answered with the original receipt.
pub const RESENT: &str = "sealchain_messages_resent_total";
/// Counter of rejected messages, label `code`.
pub const REJECTED: &str = "sealchain_messages_rejected_total";
/// Histogram of ingest latency.
pub const INGEST_SECONDS: &str = "sealchain_ingest_duration_seconds";
/// Histogram of writer batch sizes.
pub const BATCH_SIZE: &str = "sealchain_writer_batch_size";
/// Histogram of writer transaction durations.
pub const COMMIT_SECONDS: &str = "sealchain_writer_commit_duration_seconds";
/// Counter of writer batches planned again because they held a resend.
pub const RESEND_LOOKUPS: &str = "sealchain_writer_resend_lookups_total";
/// Counter of committed writer batches, by how they were written
/// (`write`: `one_statement` or `locked`).
pub const BATCHES: &str = "sealchain_writer_batches_total";
/// Counter of one-statement writes that found the chain state changed
/// since this writer's last batch.
pub const STALE_CHAIN_STATE: &str = "sealchain_writer_stale_chain_state_total";
/// Counter of sealed blocks.
pub const BLOCKS_SEALED: &str = "sealchain_blocks_sealed_total";
/// Gauge of the writer queue depth.
pub const QUEUE_DEPTH: &str = "sealchain_ingest_queue_depth";

/// Gauge: size of the newest checkpoint published.
pub const CHECKPOINT_SIZE: &str = "sealchain_checkpoint_tree_size";
/// Gauge: 1 while the writer runs.
pub const WRITER_ALIVE: &str = "sealchain_writer_alive";
/// Gauge: consecutive failed write attempts.
pub const WRITER_FAILURES: &str = "sealchain_writer_consecutive_failures";
/// Gauge: readers of the event stream in the live feed.
pub const EVENT_READERS: &str = "sealchain_event_readers";
/// Counter: event readers dropped for falling behind.
pub const EVENT_READERS_DROPPED: &str = "sealchain_event_readers_dropped_total";
/// Counter of reads tried on the read replica, label `served`.
pub const REPLICA_READS: &str = "sealchain_replica_reads_total";

/// Gauge: size of the newest checkpoint that reached the witness quorum.
pub const CHECKPOINT_WITNESSED_SIZE: &str = "sealchain_checkpoint_witnessed_tree_size";
/// Gauge: newest size a witness cosigned, label `witness`.
pub const WITNESS_COSIGNED_SIZE: &str = "sealchain_witness_cosigned_tree_size";
/// Counter of exchanges with a witness, labels `witness`, `outcome`.
pub const WITNESS_REQUESTS: &str = "sealchain_witness_requests_total";
/// Histogram of one exchange with a witness, label `witness`.
pub const WITNESS_SECONDS: &str = "sealchain_witness_request_duration_seconds";
/// Gauge: failed exchanges in a row, label `witness`.
pub const WITNESS_FAILURES: &str = "sealchain_witness_consecutive_failures";

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// The process's Prometheus recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), BATCH_BUCKETS))
            .map(|b| b.build_recorder());
        match recorder {
            Ok(recorder) => {
                let handle = recorder.handle();
                // Fails only if another recorder was installed first, in
                // which case metrics go there and this one renders empty.
                let _ = metrics::set_global_recorder(recorder);
                handle
            }
            // Only empty bucket lists are refused; ours are constants.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// Registers metric descriptions so they render before their first event.
pub fn describe() {
    handle();
    metrics::describe_counter!(ACCEPTED, "Messages committed and answered 202 Accepted.");
    metrics::describe_counter!(
        RESENT,
        "Resends of stored messages, answered 200 with the original receipt."
    );
    metrics::describe_counter!(REJECTED, "Messages rejected, by problem code.");
    metrics::describe_histogram!(
        INGEST_SECONDS,
        metrics::Unit::Seconds,
        "Time from request arrival to receipt for accepted messages."
    );
    metrics::describe_histogram!(BATCH_SIZE, "Messages per writer transaction.");
    metrics::describe_histogram!(COMMIT_SECONDS, metrics::Unit::Seconds, "Writer transaction duration.");
    metrics::describe_counter!(
        RESEND_LOOKUPS,
        "Writer batches rolled back and written again with their (sender, nonce) pairs looked up, because one was stored already."
    );
    metrics::describe_counter!(
        BATCHES,
        "Writer batches committed, by how: one statement guarded by the chain state this writer last stored (one_statement), or a transaction under the chain state lock (locked)."
    );
    metrics::describe_counter!(
        STALE_CHAIN_STATE,
        "One-statement writes that stored nothing because the chain state had changed since this writer's last batch (another node process wrote); each was written again under the lock."
    );
    metrics::describe_counter!(BLOCKS_SEALED, "Blocks sealed by this node process.");
    metrics::describe_gauge!(QUEUE_DEPTH, "Verified messages waiting for the writer.");
    metrics::describe_gauge!(
        CHECKPOINT_SIZE,
        "Tree size of the newest checkpoint this process published."
    );
    metrics::describe_gauge!(
        CHECKPOINT_WITNESSED_SIZE,
        "Tree size of the newest checkpoint that reached the witness quorum."
    );
    metrics::describe_gauge!(WITNESS_COSIGNED_SIZE, "Newest tree size each witness cosigned.");
    metrics::describe_counter!(WITNESS_REQUESTS, "Exchanges with each witness, by outcome.");
    metrics::describe_histogram!(
        WITNESS_SECONDS,
        metrics::Unit::Seconds,
        "Time of one add-checkpoint exchange with each witness."
    );
    metrics::describe_gauge!(
        WITNESS_FAILURES,
        "Failed exchanges with each witness since it last cosigned."
    );
    metrics::describe_gauge!(WRITER_ALIVE, "1 while the writer thread runs, 0 once it has stopped.");
    metrics::describe_counter!(
        REPLICA_READS,
        "Reads tried on the read replica, by where they were answered: replica, primary_behind, primary_replica_failed."
    );
    metrics::describe_gauge!(
        WRITER_FAILURES,
        "Failed write attempts (batches or idle probes) since the last success."
    );
    metrics::describe_gauge!(EVENT_READERS, "Readers of GET /v1/events in the live feed.");
    metrics::describe_counter!(
        EVENT_READERS_DROPPED,
        "Event stream readers dropped because their buffer was full."
    );
}

/// How often recorded histogram samples are folded into their buckets.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets every
/// [`UPKEEP_INTERVAL`]. The recorder keeps every sample (24 bytes) until
/// then; without this they were kept until `/metrics` was read, so a node
/// nobody scraped grew by about 24 bytes per message (240 MB at ten
/// million).
pub async fn upkeep() {
    let mut every = tokio::time::interval(UPKEEP_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        handle().run_upkeep();
    }
}
