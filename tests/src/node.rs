//! Nodes under test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sealchain_client::api::NodeClient;
use sealchain_node::config::Config;
use sealchain_node::startup::{Application, NodeHandle};
use sealchain_shared::api::NodeInfo;
use sealchain_shared::note::{Checkpoint, NoteVerifier};

use crate::TestDb;

/// Settings of a node under test; by default block size 100, open policy,
/// fresh keys.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Extra command-line arguments (`--block-size`, `--client-policy`…).
    pub args: Vec<String>,
    /// Use this key directory instead of a fresh one (restarts, two nodes).
    pub keys_dir: Option<PathBuf>,
    /// Serve HTTPS with this certificate, trusted by the test's client.
    pub tls_cert: Option<PathBuf>,
}

impl NodeOptions {
    /// Adds `--flag value`.
    pub fn arg(mut self, flag: &str, value: impl ToString) -> Self {
        self.args.push(flag.to_owned());
        self.args.push(value.to_string());
        self
    }

    /// Serves HTTPS with a PEM certificate and key; the test's client
    /// trusts the certificate as its CA.
    pub fn tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls_cert = Some(cert.to_owned());
        self.arg("--tls-cert", cert.display()).arg("--tls-key", key.display())
    }

    /// Uses an existing key directory.
    pub fn keys_dir(mut self, dir: &Path) -> Self {
        self.keys_dir = Some(dir.to_owned());
        self
    }
}

/// A running node.
#[derive(Debug)]
pub struct TestNode {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client for it.
    pub client: NodeClient,
    /// Its key directory.
    pub keys_dir: PathBuf,
    /// What it says about itself.
    pub info: NodeInfo,
    _owned_keys: Option<tempfile::TempDir>,
    handle: NodeHandle,
    task: actix_rt::task::JoinHandle<anyhow::Result<()>>,
}

impl TestNode {
    /// Starts a node on `db` (must be called inside an actix runtime, e.g.
    /// `#[actix_rt::test]`).
    pub async fn spawn(db: &TestDb, options: NodeOptions) -> Self {
        Self::try_spawn(db, options).await.expect("node failed to start")
    }

    /// Starts a node, returning start-up errors (wrong block size, keys).
    pub async fn try_spawn(db: &TestDb, options: NodeOptions) -> anyhow::Result<Self> {
        let (keys_dir, owned) = match options.keys_dir.clone() {
            Some(dir) => (dir, None),
            None => {
                let dir = tempfile::tempdir()?;
                (dir.path().join("node-keys"), Some(dir))
            }
        };
        // A free port unless the test asks for one (a restart on the same
        // address).
        let mut args: Vec<String> = if options.args.iter().any(|a| a == "--listen") {
            Vec::new()
        } else {
            vec!["--listen".into(), "127.0.0.1:0".into()]
        };
        args.extend([
            "--database-url".into(),
            db.url.clone(),
            "--keys-dir".into(),
            keys_dir.display().to_string(),
            "--workers".into(),
            "2".into(),
            "--db-pool-size".into(),
            "4".into(),
        ]);
        args.extend(options.args.iter().cloned());
        let config = Config::from_args(args)?;
        let app = Application::build(config).await?;
        let scheme = if options.tls_cert.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let task = actix_rt::spawn(app.run_until_stopped());
        let client = match &options.tls_cert {
            Some(cert) => NodeClient::with_ca(&base, Duration::from_secs(30), 64, &std::fs::read(cert)?)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            None => NodeClient::new(&base, Duration::from_secs(30), 64),
        };
        let info = client.node_info().await?;
        Ok(Self {
            base,
            client,
            keys_dir,
            info,
            _owned_keys: owned,
            handle,
            task,
        })
    }

    /// Stops gracefully (as on SIGTERM) and waits until the writer drained.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.task
            .await
            .expect("node task panicked")
            .expect("node stopped with an error");
    }

    /// The node's checkpoint once it covers `size` messages (polled every
    /// 20 ms; panics after `timeout`), verified under its verifier key.
    pub async fn checkpoint_covering(&self, size: u64, timeout: Duration) -> Checkpoint {
        let log = NoteVerifier::parse(&self.info.verifier_key).expect("the node's verifier key");
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let note = self.client.checkpoint_note().await.expect("GET /checkpoint");
            let (checkpoint, _) = Checkpoint::verify(&note, &log).expect("the checkpoint verifies");
            if checkpoint.size >= size {
                return checkpoint;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint of size {size} within {timeout:?} (at {})",
                checkpoint.size
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Moves the key directory out so it outlives this node (restarts).
    pub fn take_keys(&mut self) -> Option<tempfile::TempDir> {
        self._owned_keys.take()
    }
}
