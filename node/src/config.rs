//! Command line and environment configuration.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use sealchain_shared::api::{ClientPolicy, MAX_BLOCK_JSON_BYTES, block_json_bound, envelope_json_len};

/// The sealchain node: a tamper-evident, signed record of messages.
///
/// Clients seal signed messages to the node's X25519 key (HPKE); the node
/// checks them, stores them in Postgres in arrival order, answers each with a
/// signed receipt once it is committed, and seals a signed block of RFC 6962
/// Merkle root and previous-block hash every --block-size messages.
///
/// Every option can also be set through the environment variable shown.
#[derive(Debug, Parser)]
#[command(name = "sealchain-node", version, about, long_about)]
pub struct Cli {
    /// What to do; without a subcommand the node serves.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server options.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the node's Ed25519 signing key and X25519 encryption key.
    ///
    /// Writes signing.pem and encryption.pem (PKCS#8 PEM, mode 0600) into
    /// --keys-dir and prints the public keys. Refuses to overwrite keys.
    Keygen {
        /// Directory for the key files (created with mode 0700 if missing).
        #[arg(long, env = "SEALCHAIN_KEYS_DIR", default_value = "./node-keys")]
        keys_dir: PathBuf,
    },
    // Its help is `SeedArgs`'s documentation.
    Seed(crate::seed::SeedArgs),
    /// Print the log's checkpoint verifier key (origin+keyid+base64 key),
    /// which witnesses are configured with (`sealchain witness serve --log
    /// ORIGIN=VKEY`), from the keys in --keys-dir; nothing is created.
    VerifierKey {
        /// Directory of the node's key files.
        #[arg(long, env = "SEALCHAIN_KEYS_DIR", default_value = "./node-keys")]
        keys_dir: PathBuf,
        /// The log's origin (default: sealchain.local/ and the first 16 hex
        /// digits of the signing key), as given to the node.
        #[arg(long, env = "SEALCHAIN_ORIGIN")]
        origin: Option<String>,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Who may send messages (mirrors the protocol's `client_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Any client key.
    Open,
    /// Only keys registered with POST /v1/clients.
    Allowlist,
}

/// Options of the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SEALCHAIN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Postgres URL, e.g. postgres://user:password@localhost/sealchain.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A streaming replica of --database-url (a hot standby) for block,
    /// message, proof and tile reads. A read the replica has not replayed
    /// yet is answered from the primary, so it never misses what the
    /// primary holds. Default: every read goes to --database-url.
    #[arg(long, env = "SEALCHAIN_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,
    /// Directory of the node's key files; created with new keys on first start.
    #[arg(long, env = "SEALCHAIN_KEYS_DIR", default_value = "./node-keys")]
    pub keys_dir: PathBuf,
    /// Messages per block. Fixed for the life of a chain: the node refuses
    /// to start on a database whose chain has another block size.
    #[arg(long, env = "SEALCHAIN_BLOCK_SIZE", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub block_size: u32,
    /// Largest accepted difference between a message's ts and the node's clock.
    #[arg(long, env = "SEALCHAIN_MAX_SKEW", value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400 * 365))]
    pub max_skew: u64,
    /// Largest accepted message (message_bytes, without signature). At most
    /// 65471: the log's entry bundles carry each signed message with a
    /// 16-bit length.
    #[arg(long, env = "SEALCHAIN_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u64).range(64..=MAX_LOGGED_MESSAGE_BYTES))]
    pub max_message_bytes: u64,
    /// Largest accepted request body; larger bodies get 413 payload_too_large.
    #[arg(long, env = "SEALCHAIN_MAX_BODY_BYTES", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=16 * 1024 * 1024))]
    pub max_body_bytes: u64,
    /// Who may send: anyone, or only keys registered through the admin API.
    #[arg(long, env = "SEALCHAIN_CLIENT_POLICY", value_enum, default_value = "open")]
    pub client_policy: PolicyArg,
    /// Bearer token of the admin API (POST/GET/DELETE /v1/clients). Without
    /// it the admin API answers 401 to everyone.
    #[arg(long, env = "SEALCHAIN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "SEALCHAIN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Verified messages waiting for the writer before new ones get 503.
    #[arg(long, env = "SEALCHAIN_QUEUE_CAPACITY", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub queue_capacity: u64,
    /// Most messages the writer commits in one transaction.
    #[arg(long, env = "SEALCHAIN_MAX_BATCH", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=8192))]
    pub max_batch: u64,
    /// Database connections (the writer uses one; reads use the rest).
    #[arg(long, env = "SEALCHAIN_DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub db_pool_size: u32,
    /// How long to wait for a database connection or statement before
    /// answering 503 unavailable.
    #[arg(long, env = "SEALCHAIN_DB_TIMEOUT", value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub db_timeout: u64,
    /// How long to wait at start-up for the database to become reachable
    /// (it may start after the node), retrying with logged attempts; 0 tries
    /// once.
    #[arg(long, env = "SEALCHAIN_DB_CONNECT_TIMEOUT", value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub db_connect_timeout: u64,
    /// How long POST /v1/messages waits for its commit before answering
    /// 503. The message may still be committed afterwards: a resend of the
    /// same message is then answered 200 with its original receipt.
    #[arg(long, env = "SEALCHAIN_INGEST_TIMEOUT", value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub ingest_timeout: u64,
    /// The log's origin: the key name of its checkpoints, a schema-less URL
    /// such as log.example.com/sealchain. Fixed for the life of the chain.
    /// Default: sealchain.local/ and the first 16 hex digits of the node's
    /// signing key.
    #[arg(long, env = "SEALCHAIN_ORIGIN")]
    pub origin: Option<String>,
    /// Publish a new signed checkpoint at most this often, whenever the log
    /// has grown (e.g. 1, 0.25).
    #[arg(long, env = "SEALCHAIN_CHECKPOINT_INTERVAL", value_name = "SECONDS", default_value_t = 1.0,
          value_parser = parse_interval)]
    pub checkpoint_interval: f64,
    /// How often the event stream looks for blocks and checkpoints that
    /// other node processes on the same database committed (e.g. 1, 0.25):
    /// the most a reader of this process waits for them. This process's
    /// own are sent as soon as they are committed.
    #[arg(long, env = "SEALCHAIN_EVENT_POLL_INTERVAL", value_name = "SECONDS", default_value_t = 1.0,
          value_parser = parse_interval)]
    pub event_poll_interval: f64,
    /// Messages a second one client address may post (bursts of as many);
    /// more are answered 429 with Retry-After, before the body is read.
    /// 0: no limit. Behind a proxy every client has the proxy's address.
    #[arg(long, env = "SEALCHAIN_RATE_LIMIT_PER_IP", value_name = "N", default_value_t = 0)]
    pub rate_limit_per_ip: u32,
    /// Messages a second one sender (client key) may send (bursts of as
    /// many); more are answered 429 with Retry-After. 0: no limit.
    #[arg(long, env = "SEALCHAIN_RATE_LIMIT_PER_SENDER", value_name = "N", default_value_t = 0)]
    pub rate_limit_per_sender: u32,
    /// Seconds a client gets to send a request's head, and then its whole
    /// body: a slow or stalled client is answered 408 and disconnected, so
    /// trickling bytes cannot hold the node's resources.
    #[arg(long, env = "SEALCHAIN_CLIENT_TIMEOUT", value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub client_timeout: u64,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "SEALCHAIN_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "SEALCHAIN_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "SEALCHAIN_WORKERS")]
    pub workers: Option<usize>,
    /// A witness to send every checkpoint to (C2SP tlog-witness): a name of
    /// your choice, the witness's verifier key (name+keyid+base64, type
    /// 0x04; `sealchain witness vkey` prints it) and its URL, e.g.
    /// `w1=witness.example/w1+1a2b3c4d+BKn…@https://witness.example`. Repeat
    /// for each witness; in the environment, separate them with spaces.
    /// GET /checkpoint then serves the newest checkpoint that
    /// --witness-quorum of them cosigned.
    #[arg(
        long = "witness",
        env = "SEALCHAIN_WITNESSES",
        value_name = "NAME=VKEY@URL",
        value_delimiter = ' '
    )]
    pub witnesses: Vec<String>,
    /// How many witnesses must cosign a checkpoint before GET /checkpoint
    /// serves it (1 to the number of --witness; default: all of them).
    #[arg(long, env = "SEALCHAIN_WITNESS_QUORUM", value_name = "K")]
    pub witness_quorum: Option<u32>,
    /// Deadline of one request to a witness; a slower witness is retried
    /// later and delays no other.
    #[arg(long, env = "SEALCHAIN_WITNESS_TIMEOUT", value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub witness_timeout: u64,
}

/// A secret string (the admin token): zeroized on drop, never printed.
#[derive(Clone)]
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The node's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: String,
    /// Postgres URL.
    pub database_url: String,
    /// A read replica's URL, if reads go elsewhere.
    pub read_database_url: Option<String>,
    /// Key directory.
    pub keys_dir: PathBuf,
    /// Messages per block.
    pub block_size: u32,
    /// Allowed clock skew.
    pub max_skew: Duration,
    /// Limit on message_bytes.
    pub max_message_bytes: usize,
    /// Limit on request bodies.
    pub max_body_bytes: usize,
    /// Sender policy.
    pub client_policy: ClientPolicy,
    /// Admin API token.
    pub admin_token: Option<Secret>,
    /// Log format.
    pub log_format: LogFormat,
    /// Writer queue capacity.
    pub queue_capacity: usize,
    /// Largest writer batch.
    pub max_batch: usize,
    /// Pool size.
    pub db_pool_size: u32,
    /// Database timeout.
    pub db_timeout: Duration,
    /// How long to wait for the database at start-up.
    pub db_connect_timeout: Duration,
    /// How long an ingest request waits for its commit.
    pub ingest_timeout: Duration,
    /// The log's origin, if set.
    pub origin: Option<String>,
    /// How often checkpoints may be published.
    pub checkpoint_interval: Duration,
    /// How often the event stream polls for other processes' commits.
    pub event_poll_interval: Duration,
    /// Messages a second per client address (0: no limit).
    pub rate_limit_per_ip: u32,
    /// Messages a second per sender (0: no limit).
    pub rate_limit_per_sender: u32,
    /// Deadline of a request's head, and of its body.
    pub client_timeout: Duration,
    /// Certificate chain and key files of the HTTPS listener.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// HTTP workers.
    pub workers: usize,
    /// The witnesses and their quorum, if any.
    pub witnessing: Option<crate::witnessing::WitnessConfig>,
}

impl ServeArgs {
    /// Checks what clap cannot and builds the [`Config`].
    pub fn into_config(self) -> anyhow::Result<Config> {
        let database_url = self
            .database_url
            .filter(|u| !u.is_empty())
            .ok_or_else(|| anyhow::anyhow!("no database: pass --database-url or set DATABASE_URL"))?;
        let admin_token = match self.admin_token {
            Some(t) if t.len() < 16 => anyhow::bail!("--admin-token must be at least 16 characters"),
            Some(t) => Some(Secret(zeroize::Zeroizing::new(t))),
            None => None,
        };
        check_limits(self.block_size, self.max_message_bytes, self.max_body_bytes)?;
        let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let witnessing = crate::witnessing::WitnessConfig::from_args(
            &self.witnesses,
            self.witness_quorum,
            Duration::from_secs(self.witness_timeout),
        )?;
        Ok(Config {
            listen: self.listen,
            read_database_url: self.read_database_url.filter(|u| !u.is_empty() && *u != database_url),
            database_url,
            keys_dir: self.keys_dir,
            block_size: self.block_size,
            max_skew: Duration::from_secs(self.max_skew),
            max_message_bytes: to_usize(self.max_message_bytes),
            max_body_bytes: to_usize(self.max_body_bytes),
            client_policy: match self.client_policy {
                PolicyArg::Open => ClientPolicy::Open,
                PolicyArg::Allowlist => ClientPolicy::Allowlist,
            },
            admin_token,
            log_format: self.log_format,
            queue_capacity: to_usize(self.queue_capacity),
            max_batch: to_usize(self.max_batch),
            db_pool_size: self.db_pool_size,
            db_timeout: Duration::from_secs(self.db_timeout),
            db_connect_timeout: Duration::from_secs(self.db_connect_timeout),
            ingest_timeout: Duration::from_secs(self.ingest_timeout),
            origin: match self.origin {
                Some(origin) => {
                    sealchain_shared::note::check_origin(&origin).map_err(|e| anyhow::anyhow!("--origin: {e}"))?;
                    Some(origin)
                }
                None => None,
            },
            checkpoint_interval: Duration::from_secs_f64(self.checkpoint_interval),
            event_poll_interval: Duration::from_secs_f64(self.event_poll_interval),
            rate_limit_per_ip: self.rate_limit_per_ip,
            rate_limit_per_sender: self.rate_limit_per_sender,
            tls: self.tls_cert.zip(self.tls_key),
            client_timeout: Duration::from_secs(self.client_timeout),
            workers: self
                .workers
                .filter(|w| *w > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            witnessing,
        })
    }
}

/// The largest message whose signed form (64-byte signature first) fits the
/// 16-bit length of an entry bundle (PROTOCOL §9).
pub const MAX_LOGGED_MESSAGE_BYTES: u64 = 65_535 - 64;

fn parse_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.05..=3600.0).contains(&v) {
        return Err("must be between 0.05 and 3600 seconds".into());
    }
    Ok(v)
}

/// Refuses settings that would produce a chain nobody can serve or send
/// to: a block whose JSON could exceed what clients read
/// ([`MAX_BLOCK_JSON_BYTES`]), or a body limit below the envelope of the
/// largest message.
fn check_limits(block_size: u32, max_message_bytes: u64, max_body_bytes: u64) -> anyhow::Result<()> {
    let block_bound = block_json_bound(block_size, max_message_bytes);
    if block_bound > MAX_BLOCK_JSON_BYTES {
        let largest = (MAX_BLOCK_JSON_BYTES - 1024) / u64::from(block_size) / 2 - 256;
        anyhow::bail!(
            "--block-size {block_size} with --max-message-bytes {max_message_bytes} allows blocks of up to \
             {block_bound} bytes of JSON, more than the {MAX_BLOCK_JSON_BYTES} a block read or `sealchain verify` \
             accepts; lower either (with this block size, --max-message-bytes {largest} at most)"
        );
    }
    let envelope = envelope_json_len(max_message_bytes);
    if envelope > max_body_bytes {
        anyhow::bail!(
            "--max-body-bytes {max_body_bytes} is too small for the envelope of a message of --max-message-bytes \
             {max_message_bytes} ({envelope} bytes); raise --max-body-bytes to at least {envelope}"
        );
    }
    Ok(())
}

impl Config {
    /// Builds a configuration from command-line style arguments (without
    /// the program name), applying the same defaults and checks as the
    /// binary. Used by tests and embedders.
    pub fn from_args<I, S>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once(std::ffi::OsString::from("sealchain-node")).chain(args.into_iter().map(Into::into));
        let cli = Cli::try_parse_from(argv)?;
        cli.serve.into_config()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn config(args: &[&str]) -> anyhow::Result<Config> {
        Config::from_args(["--database-url", "postgres://x@localhost/x"].iter().chain(args))
    }

    #[test]
    fn messages_must_fit_an_entry_bundle() {
        let e = config(&["--max-message-bytes", "65472"]).unwrap_err();
        assert!(e.to_string().contains("65472"), "{e}");
        let e = config(&["--origin", "https://log.example/x"]).unwrap_err();
        assert!(e.to_string().contains("--origin"), "{e}");
        let c = config(&["--origin", "log.example/x", "--checkpoint-interval", "0.25"]).unwrap();
        assert_eq!(c.origin.as_deref(), Some("log.example/x"));
        assert_eq!(c.checkpoint_interval, Duration::from_millis(250));
        assert!(config(&["--checkpoint-interval", "0"]).is_err());
        assert_eq!(
            config(&[]).unwrap().event_poll_interval,
            crate::routes::events::POLL_INTERVAL
        );
        let c = config(&["--event-poll-interval", "0.25"]).unwrap();
        assert_eq!(c.event_poll_interval, Duration::from_millis(250));
        let e = config(&["--event-poll-interval", "0.01"]).unwrap_err();
        assert!(e.to_string().contains("between 0.05 and 3600"), "{e}");
    }

    #[test]
    fn defaults_are_servable() {
        let c = config(&[]).unwrap();
        assert_eq!(
            (c.block_size, c.max_message_bytes, c.max_body_bytes),
            (100, 16_384, 65_536)
        );
        assert_eq!(c.db_connect_timeout, Duration::from_secs(60));
        assert_eq!(c.ingest_timeout, Duration::from_secs(30));
    }

    #[test]
    fn blocks_too_large_to_read_are_refused() {
        let e = config(&["--block-size", "100000", "--max-message-bytes", "16384"]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("--block-size 100000") && text.contains("at most"),
            "{text}"
        );
        // The largest servable message for that block size is accepted.
        let largest = text
            .rsplit("--max-message-bytes ")
            .next()
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        config(&["--block-size", "100000", "--max-message-bytes", largest]).unwrap();
        // And so is a big block of small messages.
        config(&["--block-size", "10000", "--max-message-bytes", "4096"]).unwrap();
    }

    #[test]
    fn a_body_limit_below_the_largest_envelope_is_refused() {
        let e = config(&["--max-message-bytes", "65471", "--max-body-bytes", "65536"]).unwrap_err();
        assert!(e.to_string().contains("raise --max-body-bytes to at least 87"), "{e}");
        let needed = envelope_json_len(65_471).to_string();
        config(&["--max-message-bytes", "65471", "--max-body-bytes", &needed]).unwrap();
        let short = (envelope_json_len(65_471) - 1).to_string();
        assert!(config(&["--max-message-bytes", "65471", "--max-body-bytes", &short]).is_err());
    }
}
