//! Building and running the node: keys, database, writer, HTTP server.

use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::{Context, bail};
use sealchain_shared::api::ClientPolicy;
use sealchain_shared::note::NoteVerifier;
use tracing_actix_web::TracingLogger;

use crate::config::Config;
use crate::db::{self, models::NewChainState, repo};
use crate::ingest::writer::{self, IngestHandle, WriterConfig};
use crate::keys::NodeKeys;
use crate::log;
use crate::ratelimit::RateLimits;
use crate::routes::events::{self, EventHub};
use crate::state::AppState;

/// How long an idle client connection stays open. The CLI's pool stops
/// reusing a connection sooner (`sealchain_client::api::IDLE_CONNECTION_REUSE`).
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Seconds in-flight requests get to finish after a stop signal.
pub const SHUTDOWN_GRACE_SECS: u64 = 30;

/// A node ready to serve.
pub struct Application {
    port: u16,
    server: Server,
    ingest: IngestHandle,
    writer: JoinHandle<()>,
    checkpoints: tokio::task::JoinHandle<()>,
    witnessing: Option<crate::witnessing::Witnessing>,
    events: EventHub,
    poller: tokio::task::JoinHandle<()>,
}

/// Stops a running node: ends the event streams (which would otherwise
/// hold a graceful stop for its whole grace period), then the server.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    server: ServerHandle,
    events: EventHub,
}

impl NodeHandle {
    /// Stops the server; `graceful` lets in-flight requests finish first.
    pub async fn stop(&self, graceful: bool) {
        self.events.close();
        self.server.stop(graceful).await;
    }
}

/// Resolves on SIGTERM or SIGINT, after ending the event streams; the
/// server then stops gracefully.
async fn stop_signal(events: EventHub) {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "stopping gracefully");
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot listen for stop signals; stop the node with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
    events.close();
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Loads (or creates) the keys, migrates the database, checks that the
    /// stored chain was built with this block size and signing key, starts
    /// the writer and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        crate::metrics::describe();
        // First, so a bad certificate fails the start before anything else.
        let tls = config
            .tls
            .as_ref()
            .map(|(cert, key)| crate::tls::server_config(cert, key))
            .transpose()?;
        let (keys, created) = NodeKeys::load_or_create(&config.keys_dir)?;
        if created {
            tracing::info!(keys_dir = %config.keys_dir.display(), "created new node keys");
        }
        tracing::info!(
            signing_key = %keys.signing_public_hex(),
            encryption_key = %keys.encryption_public_hex(),
            "node keys"
        );

        let url = config.database_url.clone();
        let timeout = config.db_timeout;
        let connect_timeout = config.db_connect_timeout;
        let pool_size = config.db_pool_size;
        let pool = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut conn = db::connect_with_retry(&url, connect_timeout)?;
            db::run_migrations(&mut conn)?;
            drop(conn);
            db::build_pool(&url, pool_size, timeout)
        })
        .await??;
        let origin = config
            .origin
            .clone()
            .unwrap_or_else(|| sealchain_shared::note::default_origin(&keys.signing.verifying_key()));
        let next_seq = check_chain(&pool, &config, &keys, &origin).await?;
        let replica = match config.read_database_url.clone() {
            Some(url) => {
                let (size, timeout, wait) = (config.db_pool_size, config.db_timeout, config.db_connect_timeout);
                let (block_size, key) = (config.block_size, keys.signing.verifying_key().to_bytes());
                let pool = tokio::task::spawn_blocking(move || {
                    db::reads::connect_replica(&url, size, timeout, wait, block_size, &key)
                })
                .await??;
                tracing::info!("block, message, proof and tile reads go to the read replica");
                Some(pool)
            }
            None => None,
        };
        let log_key = NoteVerifier::new(&origin, keys.signing.verifying_key())?;
        tracing::info!(origin, verifier_key = %log_key.to_vkey(), "log");
        let events = EventHub::new();
        let mut publisher = log::Publisher::new(pool.clone(), keys.signing.clone(), origin).events(events.clone());
        let (notify, published) = tokio::sync::watch::channel(None);
        if config.witnessing.is_some() {
            publisher = publisher.notify(notify.clone());
        }
        let seed_pool = pool.clone();
        let publisher = tokio::task::spawn_blocking(move || {
            log::publish_now(&mut publisher)?;
            // The witnesses start from the newest checkpoint, whoever
            // published it.
            let mut conn = seed_pool.get()?;
            if let Some(row) = repo::latest_checkpoint(&mut conn)? {
                notify.send_replace(Some(crate::witnessing::Published {
                    size: u64::try_from(row.tree_size)?,
                    note: row.note,
                }));
            }
            anyhow::Ok(publisher)
        })
        .await??;
        let checkpoints = publisher.spawn(config.checkpoint_interval);
        let witnesses = match &config.witnessing {
            Some(witnessing) => {
                let statuses = crate::witnessing::initial_statuses(witnessing);
                let running = crate::witnessing::Witnessing::start(
                    pool.clone(),
                    witnessing.clone(),
                    log_key.clone(),
                    published,
                    statuses.clone(),
                )?;
                tracing::info!(
                    witnesses = witnessing.witnesses.len(),
                    quorum = witnessing.quorum,
                    "sending checkpoints to witnesses"
                );
                Some((
                    running,
                    crate::state::Witnesses {
                        statuses,
                        vkeys: witnessing.vkeys(),
                        quorum: witnessing.quorum,
                    },
                ))
            }
            None => None,
        };
        let (witnessing, witnesses) = witnesses.unzip();

        if config.client_policy == ClientPolicy::Allowlist && config.admin_token.is_none() {
            tracing::warn!("allowlist policy without --admin-token: the admin API is disabled");
        }
        let allowlist = if config.client_policy == ClientPolicy::Allowlist {
            crate::allowlist::Allowlist::follow(config.database_url.clone(), config.db_timeout * 2)
                .context("starting the allowlist listener")?
        } else {
            std::sync::Arc::default()
        };

        let (ingest, writer) = writer::spawn(
            pool.clone(),
            keys.signing.clone(),
            WriterConfig {
                block_size: config.block_size,
                queue_capacity: config.queue_capacity,
                max_batch: config.max_batch,
                reply_timeout: config.ingest_timeout,
            },
            {
                let events = events.clone();
                Box::new(move |blocks| events.sealed(blocks))
            },
        )
        .context("starting the writer thread")?;

        tokio::spawn(crate::metrics::upkeep());
        let limits = std::sync::Arc::new(RateLimits::new(config.rate_limit_per_ip, config.rate_limit_per_sender));
        if limits.enabled() {
            let limits = limits.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    limits.forget_idle();
                }
            });
        }
        let listener = TcpListener::bind(&config.listen).with_context(|| format!("binding {}", config.listen))?;
        let port = listener.local_addr()?.port();
        let poller = events::poller(pool.clone(), events.clone(), config.event_poll_interval);
        let hub = web::Data::new(events.clone());
        let reads = db::reads::Reads::new(pool.clone(), replica, config.block_size, next_seq);
        let state = web::Data::new(AppState {
            pool,
            reads,
            ingest: ingest.clone(),
            verifying_key: keys.signing.verifying_key(),
            signing_key: keys.signing,
            encryption_key: keys.encryption,
            block_size: config.block_size,
            max_skew: config.max_skew,
            max_message_bytes: config.max_message_bytes,
            max_body_bytes: config.max_body_bytes,
            client_timeout: config.client_timeout,
            client_policy: config.client_policy,
            admin_token: config.admin_token.clone(),
            log: log_key,
            limits,
            allowlist,
            witnesses,
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
                .app_data(state.clone())
                .app_data(hub.clone())
                .configure(crate::routes::config)
        })
        .workers(config.workers)
        .client_request_timeout(config.client_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(KEEP_ALIVE)
        .shutdown_timeout(SHUTDOWN_GRACE_SECS)
        .shutdown_signal(stop_signal(events.clone()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls)?,
            None => server.listen(listener)?,
        }
        .run();
        tracing::info!(address = %config.listen, port, scheme, "listening");
        Ok(Self {
            port,
            server,
            ingest,
            writer,
            checkpoints,
            witnessing,
            events,
            poller,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (gracefully with `stop(true)`).
    pub fn handle(&self) -> NodeHandle {
        NodeHandle {
            server: self.server.handle(),
            events: self.events.clone(),
        }
    }

    /// Serves until SIGINT/SIGTERM (or [`NodeHandle::stop`]): stops
    /// accepting, lets in-flight requests finish, then lets the writer
    /// commit and answer everything still queued before returning.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            server,
            ingest,
            writer,
            checkpoints,
            witnessing,
            events,
            poller,
            ..
        } = self;
        let served = server.await;
        events.close();
        poller.abort();
        checkpoints.abort();
        if let Some(witnessing) = witnessing {
            tokio::task::spawn_blocking(move || witnessing.stop()).await?;
        }
        drop(ingest);
        tokio::task::spawn_blocking(move || writer.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        tracing::info!("stopped");
        served.context("HTTP server failed")
    }
}

/// Creates the chain state on a new database, or checks that an existing
/// chain matches this node's block size, signing key and log origin; then
/// brings the log up to the chain (a chain from before the log). Returns
/// the chain's `next_seq`.
async fn check_chain(pool: &db::DbPool, config: &Config, keys: &NodeKeys, origin: &str) -> anyhow::Result<u64> {
    let pool = pool.clone();
    let block_size = i32::try_from(config.block_size)?;
    let signing_key = keys.signing.verifying_key().to_bytes();
    let wanted_origin = origin.to_owned();
    let (state, caught_up) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut conn = pool.get()?;
        let mut state = repo::init_chain_state(
            &mut conn,
            &NewChainState {
                block_size,
                signing_key: &signing_key,
                created_at: sealchain_shared::now_ms(),
                origin: &wanted_origin,
            },
        )?;
        if state.origin.is_none() && state.block_size == block_size && state.signing_key == signing_key {
            repo::set_origin(&mut conn, &wanted_origin)?;
            state.origin = Some(wanted_origin);
        }
        let caught_up = if state.signing_key == signing_key {
            log::catch_up(&mut conn)?
        } else {
            0
        };
        Ok((state, caught_up))
    })
    .await??;
    if state.block_size != block_size {
        bail!(
            "the database's chain was built with block size {}, not {}; block size is fixed for the life of a chain \
             (start with --block-size {})",
            state.block_size,
            block_size,
            state.block_size
        );
    }
    if state.signing_key != signing_key {
        bail!(
            "the database's chain was built by node key {}, but this node's key is {}; \
             point --keys-dir at that node's keys or use another database",
            hex::encode(&state.signing_key),
            hex::encode(signing_key)
        );
    }
    if state.origin.as_deref() != Some(origin) {
        bail!(
            "the database's log has origin {:?}, not {origin:?}; the origin is fixed for the life of a chain \
             (start with --origin {})",
            state.origin.as_deref().unwrap_or(""),
            state.origin.as_deref().unwrap_or("")
        );
    }
    if caught_up > 0 {
        tracing::info!(messages = caught_up, "the log caught up with the chain");
    }
    tracing::info!(
        next_seq = state.next_seq,
        blocks = state.block_count,
        block_size,
        "chain loaded"
    );
    Ok(u64::try_from(state.next_seq).unwrap_or_default())
}
