#!/usr/bin/env bash
# Starts a local PostgreSQL for the test suite (no Docker needed) and prints
# the TEST_DATABASE_URL to use:
#
#     eval "$(scripts/test-postgres.sh)"
#     cargo test --workspace
#
# It uses the Debian/Ubuntu cluster tools (postgresql-common): installs
# PostgreSQL with apt if it is missing, starts the newest cluster named
# "main" (creating it if needed), and sets the `postgres` user's password.
# Needs root (or sudo) for the parts that change the system. Progress goes
# to stderr; only the export lines (TEST_DATABASE_URL, and PGSSLMODE for
# plaintext connections) go to stdout.
set -euo pipefail

PASSWORD="${SEALCHAIN_TEST_PG_PASSWORD:-postgres}"
say() { echo "test-postgres: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    say "installing PostgreSQL (apt-get install postgresql libpq-dev)"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql libpq-dev >&2
fi
if ! [ -e /usr/include/postgresql/libpq-fe.h ]; then
    say "installing libpq-dev (the node links libpq)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpq-dev >&2
fi

version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)"
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q .; then
    say "creating cluster $version/main"
    as_root pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
    say "starting cluster $version/main"
    as_root pg_ctlcluster "$version" main start >&2
fi
port="$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')"

for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" || { say "PostgreSQL did not become ready on port $port"; exit 1; }

as_root su postgres -c "psql -q -p $port -c \"ALTER USER postgres PASSWORD '$PASSWORD'\"" >&2

# The read-replica tests take a streaming replica of this server with
# pg_basebackup: it needs wal_level replica (the default), WAL senders, and
# a `replication` entry for 127.0.0.1 in pg_hba.conf (Debian's default has
# one; added if missing). The postgres role has REPLICATION.
pgq() { as_root su postgres -c "psql -Atq -p $port -c \"$1\""; }
if [ "$(pgq 'SHOW wal_level')" = "minimal" ] || [ "$(pgq 'SHOW max_wal_senders')" = "0" ]; then
    say "enabling streaming replication (wal_level replica) and restarting"
    pgq "ALTER SYSTEM SET wal_level = replica" >&2
    pgq "ALTER SYSTEM SET max_wal_senders = 10" >&2
    as_root pg_ctlcluster "$version" main restart >&2
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 1; done
fi
hba="$(pgq 'SHOW hba_file')"
if ! as_root grep -Eq '^host[[:space:]]+replication[[:space:]]+(all|postgres)[[:space:]]+127\.0\.0\.1/32' "$hba"; then
    say "allowing replication connections from 127.0.0.1 in $hba"
    echo "host replication all 127.0.0.1/32 scram-sha-256" | as_root tee -a "$hba" >/dev/null
    pgq "SELECT pg_reload_conf()" >/dev/null
fi
say "PostgreSQL $version is up on 127.0.0.1:$port"
echo "export TEST_DATABASE_URL=postgres://postgres:$PASSWORD@127.0.0.1:$port/postgres"
# Plaintext connections to this local server (unless the caller chose
# otherwise): Debian's cluster offers TLS, and libpq's default
# (sslmode=prefer) would take it. Besides costing CPU for nothing on the
# loopback, TLS puts libpq's OpenSSL objects in every test process, and
# OpenSSL's exit handler (OPENSSL_cleanup) can crash a test binary that
# exits while its pool threads still hold them: SIGSEGV or "free():
# invalid pointer" after every test passed, seen about once in 30 runs.
echo "export PGSSLMODE=${PGSSLMODE:-disable}"
