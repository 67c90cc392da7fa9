//! Per-test databases.

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::MigrationHarness;
use sha2::{Digest, Sha256};

const HELP: &str = "integration tests need Postgres: either set TEST_DATABASE_URL \
(e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres; scripts/test-postgres.sh starts a local one), \
or run a Docker engine so testcontainers can start postgres:16-alpine";

/// The name of the reused testcontainers Postgres (remove it with
/// `docker rm -f sealchain-test-postgres`).
pub const CONTAINER_NAME: &str = "sealchain-test-postgres";

/// A database server: its URL without a database name, and one database to
/// connect to for administration.
#[derive(Debug, Clone)]
struct Server {
    /// `postgres://user:password@host:port`
    base: String,
    /// Database used for CREATE/DROP DATABASE.
    admin_db: String,
}

impl Server {
    fn url(&self, db: &str) -> String {
        format!("{}/{db}", self.base)
    }

    fn admin(&self) -> PgConnection {
        PgConnection::establish(&self.url(&self.admin_db))
            .unwrap_or_else(|e| panic!("cannot connect to the test Postgres ({e}); {HELP}"))
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => from_url(&url),
        // testcontainers' blocking runner drives its own runtime, which
        // cannot start inside the test's; give it a thread of its own.
        _ => std::thread::spawn(start_container)
            .join()
            .unwrap_or_else(|_| panic!("starting the Postgres container failed; {HELP}")),
    })
}

/// The URL of the test server's administration database (for tools such
/// as `pg_basebackup` that connect to the server itself).
pub fn server_url() -> String {
    let server = server();
    server.url(&server.admin_db)
}

/// Splits `postgres://user:pw@host:port/db?params` at the database name.
fn from_url(url: &str) -> Server {
    let (without_query, _) = url.split_once('?').unwrap_or((url, ""));
    let after_scheme = without_query
        .find("://")
        .map(|i| i + 3)
        .unwrap_or_else(|| panic!("TEST_DATABASE_URL is not a URL; {HELP}"));
    match without_query[after_scheme..].find('/') {
        Some(slash) => {
            let cut = after_scheme + slash;
            let db = &without_query[cut + 1..];
            Server {
                base: without_query[..cut].to_owned(),
                admin_db: if db.is_empty() {
                    "postgres".into()
                } else {
                    db.to_owned()
                },
            }
        }
        None => Server {
            base: without_query.to_owned(),
            admin_db: "postgres".into(),
        },
    }
}

fn start_container() -> Server {
    use testcontainers::runners::SyncRunner;
    use testcontainers::{ImageExt, ReuseDirective};
    use testcontainers_modules::postgres::Postgres;

    let container = Postgres::default()
        .with_tag("16-alpine")
        .with_container_name(CONTAINER_NAME)
        .with_reuse(ReuseDirective::Always)
        .start()
        .unwrap_or_else(|e| {
            panic!("TEST_DATABASE_URL is not set and starting a Postgres container failed ({e}); {HELP}")
        });
    let host = container.get_host().expect("container host").to_string();
    let port = container.get_host_port_ipv4(5432).expect("container port");
    // A reusable container outlives this handle; it is shared by every
    // test binary and every run.
    std::mem::forget(container);
    Server {
        base: format!("postgres://postgres:postgres@{host}:{port}"),
        admin_db: "postgres".into(),
    }
}

/// A name for the template that changes whenever a migration does, so a
/// stale template is never used.
fn template_name() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("migrations directory") {
            let path = entry.expect("migration entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hash = Sha256::new();
    for f in files {
        hash.update(f.file_name().unwrap().as_encoded_bytes());
        hash.update(std::fs::read(&f).expect("migration file"));
    }
    format!("sealchain_template_{}", &hex::encode(hash.finalize())[..16])
}

/// Creates the migrated template once per server. An advisory lock keeps
/// parallel test binaries from building it twice.
fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let server = server();
        let name = template_name();
        let mut admin = server.admin();
        diesel::sql_query("SELECT pg_advisory_lock(736275)")
            .execute(&mut admin)
            .unwrap();
        let exists = diesel::sql_query(format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"))
            .execute(&mut admin)
            .unwrap()
            > 0;
        if !exists {
            let building = format!("{name}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {building}"))
                .execute(&mut admin)
                .unwrap();
            diesel::sql_query(format!("CREATE DATABASE {building}"))
                .execute(&mut admin)
                .unwrap();
            {
                let mut conn = PgConnection::establish(&server.url(&building)).unwrap();
                conn.run_pending_migrations(sealchain_node::db::MIGRATIONS).unwrap();
            }
            diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                .execute(&mut admin)
                .unwrap();
        }
        diesel::sql_query("SELECT pg_advisory_unlock(736275)")
            .execute(&mut admin)
            .unwrap();
        name
    })
}

/// How many migrations the node embeds (and applies at start-up).
pub fn embedded_migrations() -> usize {
    diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&sealchain_node::db::MIGRATIONS)
        .unwrap_or_else(|e| panic!("reading the embedded migrations: {e}"))
        .len()
}

/// A line of `EXPLAIN`.
#[derive(diesel::QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The plan Postgres picks for `sql` (`EXPLAIN`), one node per line, for
/// the tests that check which index a query reads.
pub fn explain(conn: &mut PgConnection, sql: &str) -> String {
    let plan: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN {sql}"))
        .load(conn)
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
    plan.into_iter().map(|l| l.line).collect::<Vec<_>>().join("\n")
}

/// A database of its own for one test, dropped on drop.
#[derive(Debug)]
pub struct TestDb {
    /// Connection URL.
    pub url: String,
    name: String,
    /// The server it lives on (the test server unless [`TestDb::on`]).
    server: Server,
}

impl TestDb {
    /// Creates a new, migrated, empty database.
    pub fn new() -> Self {
        Self::create(template())
    }

    /// Creates a new database with no tables at all, as an operator's
    /// first `CREATE DATABASE` leaves it (start-up migration tests).
    pub fn empty() -> Self {
        Self::create("template0")
    }

    /// Creates a new, migrated, empty database on another server than the
    /// test server (`admin_url`: a URL of any database there), such as a
    /// private cluster of the test's own ([`crate::cluster::Cluster`]).
    pub fn on(admin_url: &str) -> Self {
        let db = Self::create_on(&from_url(admin_url), "template0");
        let mut conn = db.connect();
        conn.run_pending_migrations(sealchain_node::db::MIGRATIONS)
            .unwrap_or_else(|e| panic!("migrating {}: {e}", db.name));
        db
    }

    fn create(template: &str) -> Self {
        Self::create_on(server(), template)
    }

    fn create_on(server: &Server, template: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "sealchain_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut server.admin())
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        Self {
            url: server.url(&name),
            name,
            server: server.clone(),
        }
    }

    /// A direct connection, for tests that inspect or tamper with rows.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap()
    }

    /// Runs SQL directly (tamper tests, outage simulation).
    pub fn execute(&self, sql: &str) -> usize {
        diesel::sql_query(sql).execute(&mut self.connect()).unwrap()
    }

    /// Runs SQL on the administration database.
    pub fn admin_execute(&self, sql: &str) -> usize {
        diesel::sql_query(sql).execute(&mut self.server.admin()).unwrap()
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the `chain_state` row lock (`SELECT … FOR UPDATE`) in a session
    /// of its own and holds it until released: every writer transaction
    /// waits behind it, so requests pile up in the node's queue.
    pub fn lock_chain_state(&self) -> ChainStateLock {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (locked, is_locked) = std::sync::mpsc::channel::<()>();
        let url = self.url.clone();
        let holder = std::thread::spawn(move || {
            let mut conn = PgConnection::establish(&url).unwrap();
            conn.transaction::<_, diesel::result::Error, _>(|conn| {
                diesel::sql_query("SELECT * FROM chain_state FOR UPDATE").execute(conn)?;
                locked.send(()).unwrap();
                released.recv().unwrap();
                Ok(())
            })
            .unwrap();
        });
        is_locked.recv().expect("the chain state row is locked");
        ChainStateLock { release, holder }
    }
}

/// The `chain_state` row lock of another session ([`TestDb::lock_chain_state`]).
#[derive(Debug)]
pub struct ChainStateLock {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl ChainStateLock {
    /// Commits the holding transaction, freeing the row.
    pub fn release(self) {
        self.release.send(()).expect("the holder waits");
        self.holder.join().expect("the holder ends");
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // FORCE disconnects the pools of nodes that are still running.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = diesel::sql_query(sql).execute(&mut self.server.admin()) {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}
