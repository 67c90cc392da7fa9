//! Private PostgreSQL servers for the tests that need one of their own: a
//! fresh cluster (`initdb`), a primary to replicate from, or a streaming
//! replica of one (`pg_basebackup -R`), each in a temporary directory on a
//! free port, stopped on drop. The shared test server is never stopped or
//! reconfigured.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};

/// The newest installed PostgreSQL's `bin` directory.
pub fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (the
/// server refuses to run as root).
pub fn pg(tool: &Path, args: &[&str]) -> Output {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    };
    cmd.args(args).output().unwrap()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    setting: String,
}

/// A PostgreSQL server in a temporary directory, stopped on drop.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Cluster {
    /// A cluster not made yet: a temporary directory the `postgres` user
    /// owns for its data directory, and a free port.
    fn unmade() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let _ = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status();
        Self {
            dir,
            bin: pg_bin(),
            port: free_port(),
        }
    }

    /// The data directory.
    pub fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// A fresh cluster (`initdb`, trust authentication), not started.
    pub fn init() -> Self {
        let cluster = Self::unmade();
        let init = pg(
            &cluster.bin.join("initdb"),
            &["-D", &cluster.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        );
        assert_ok("initdb", &init);
        cluster
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let start = pg(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"],
        );
        let server_log = std::fs::read_to_string(&log).unwrap_or_default();
        assert_ok(&format!("pg_ctl start (server log:\n{server_log})"), &start);
    }

    /// Stops the server at once (as a crash would).
    pub fn stop(&self) {
        let _ = pg(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "stop"],
        );
    }

    /// A fresh cluster, started, that a replica can stream from: its own
    /// WAL, so a replica replays only what the test writes, whatever else
    /// the shared test server holds (`initdb --auth=trust` already lets
    /// 127.0.0.1 connect for replication).
    pub fn primary() -> Self {
        let cluster = Self::init();
        let conf = PathBuf::from(cluster.data()).join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\nwal_level = replica\nmax_wal_senders = 4\nshared_buffers = 32MB\nfsync = off\n");
        std::fs::write(&conf, text).unwrap();
        cluster.start();
        cluster
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A streaming replica (a hot standby) of the server at `primary_url`,
    /// taken with `pg_basebackup -R` and started. The primary needs a
    /// replication entry in `pg_hba.conf` for 127.0.0.1 and a role with
    /// REPLICATION (`scripts/test-postgres.sh` sets both up).
    pub fn replica_of(primary_url: &str) -> Self {
        let replica = Self::unmade();
        let backup = pg(
            &replica.bin.join("pg_basebackup"),
            &[
                "-d",
                primary_url,
                "-D",
                &replica.data(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        assert_ok(
            "pg_basebackup (the test server needs a pg_hba.conf `replication` entry for 127.0.0.1 and a \
             REPLICATION role: run scripts/test-postgres.sh)",
            &backup,
        );
        // Debian keeps the configuration outside the data directory, so the
        // copy has none of its own: a standby, trusting local connections,
        // with the limits a standby must not set below the primary's.
        let mut primary = PgConnection::establish(primary_url).unwrap();
        let limits: Vec<Setting> = diesel::sql_query(
            "SELECT name, setting FROM pg_settings WHERE name IN ('max_connections', 'max_worker_processes', \
             'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction')",
        )
        .load(&mut primary)
        .unwrap();
        let mut conf = String::from("hot_standby = on\nshared_buffers = 32MB\nfsync = off\n");
        for l in limits {
            conf.push_str(&format!("{} = {}\n", l.name, l.setting));
        }
        let data = PathBuf::from(replica.data());
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let _ = Command::new("chown").args(["-R", "postgres"]).arg(&data).status();
        replica.start();
        replica
    }

    /// A connection to database `db`, once the server lets one in (a new
    /// database appears on a replica only once it replayed its creation).
    pub fn connect(&self, db: &str, timeout: Duration) -> PgConnection {
        let deadline = Instant::now() + timeout;
        loop {
            match PgConnection::establish(&self.url(db)) {
                Ok(conn) => return conn,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "no connection to {db} on port {}: {e}",
                        self.port
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Runs SQL on database `db` of this server.
    pub fn execute(&self, db: &str, sql: &str) -> usize {
        diesel::sql_query(sql)
            .execute(&mut self.connect(db, Duration::from_secs(30)))
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
