# shellcheck shell=bash
# Helpers shared by the measuring scripts (bench.sh, growth.sh,
# classic-cpu.sh, replica-bench.sh, seed.sh, explorer-bench.sh,
# wal-bench.sh, steady.sh); sourced, not run.

# The database connections of every process started here (node, psql,
# clients) are plaintext unless PGSSLMODE says otherwise, as in the compose
# file (whose Postgres image has TLS off). libpq's own default, "prefer",
# would use TLS whenever the server offers it (Debian's packaged cluster
# does), which costs both the node and Postgres CPU per round trip
# (docs/performance.md, part 3). PGSSLMODE=prefer measures that.
export PGSSLMODE="${PGSSLMODE:-disable}"
echo "measure: database connections with PGSSLMODE=$PGSSLMODE" >&2

# Clock ticks per second, the unit of cpu_ticks (used by the scripts that
# source this file).
# shellcheck disable=SC2034
TICK="$(getconf CLK_TCK)"

# utime + stime, in clock ticks, of the given pids (those still alive; a
# pid that has exited counts 0).
cpu_ticks() {
    local total=0 pid stat
    for pid in "$@"; do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
        stat="${stat##*) }"
        # shellcheck disable=SC2086
        set -- $stat
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# db_backends DB: the pids of the Postgres backends connected to database
# DB (the node's pool, the writer), for cpu_ticks; needs TEST_DATABASE_URL.
db_backends() { psql -At "$TEST_DATABASE_URL" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$1'"; }

# backend_ticks DB: "pid:ticks" (cpu_ticks) of each backend of database DB
# now, taken before and after a load for ticks_since.
backend_ticks() {
    local pid
    for pid in $(db_backends "$1"); do
        echo -n "$pid:$(cpu_ticks "$pid") "
    done
}

# ticks_since BEFORE AFTER: the CPU ticks that the backends of AFTER (a
# backend_ticks at a load's end) spent since BEFORE (one at its start). The
# node's pool opens connections as it needs them, so a backend that
# connected during the load counts from its start; one that exited during
# it is not counted.
ticks_since() {
    local -A start=()
    local pair total=0
    for pair in $1; do start[${pair%%:*}]="${pair#*:}"; done
    for pair in $2; do total=$((total + ${pair#*:} - ${start[${pair%%:*}]:-0})); done
    echo "$total"
}

# pg_settings URL: one line of the server's settings that the figures
# depend on, and the machine's huge pages (huge_pages = try falls back to
# ordinary pages without a word; those in use are HugePages_Total -
# HugePages_Free).
pg_settings() {
    psql -At "$1" -c "SELECT string_agg(name || ' = ' || current_setting(name), ', ' ORDER BY name) FROM pg_settings
        WHERE name IN ('shared_buffers', 'checkpoint_timeout', 'max_wal_size', 'wal_compression',
        'synchronous_commit', 'huge_pages')" | tr -d '\n'
    awk '/^HugePages_(Total|Free)/ {printf "; %s %s", $1, $2} END {print ""}' /proc/meminfo
}

# prewarm_message_indexes URL: loads the indexes of the messages table in
# the database at URL into shared_buffers (pg_prewarm), as a node that has
# been running holds the pages it inserts into; right after a seed or a
# restart they would come from the disk or the page cache.
prewarm_message_indexes() {
    psql -At "$1" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_prewarm" >/dev/null
    psql -At "$1" -c "SELECT sum(pg_prewarm(c.oid::regclass)) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'messages'::regclass" >/dev/null
}

# A TCP port on 127.0.0.1 that is free now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_ready URL PID LOG [SECONDS]: waits (tries 10 ms apart, for about
# SECONDS, default 30) until the node at URL answers `/readyz` with 200; if
# its process PID exits first, prints LOG and exits 1.
wait_ready() {
    local url="$1" pid="$2" log="$3" seconds="${4:-30}" _
    for _ in $(seq 1 $((seconds * 100))); do
        curl -fs "$url/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.01
    done
    echo "the node at $url did not become ready" >&2
    exit 1
}

# release_binaries PREFIX: builds the release binaries of the node and the
# client unless PREFIX_SKIP_BUILD is set (a fat-LTO build takes minutes
# even when only one crate changed); sets CLI_BIN, and NODE_BIN from
# PREFIX_NODE_BIN when set (another node binary, an older build say,
# measured with the same tools and client).
release_binaries() {
    local skip="${1}_SKIP_BUILD" node="${1}_NODE_BIN"
    if [ -z "${!skip:-}" ]; then
        echo "measure: building the release binaries" >&2
        cargo build --release --locked -q -p sealchain-node -p sealchain-client --bins
    fi
    NODE_BIN="${!node:-$PWD/target/release/sealchain-node}"
    CLI_BIN="$PWD/target/release/sealchain"
    [ -x "$NODE_BIN" ] || { echo "measure: no node binary at $NODE_BIN" >&2; exit 1; }
    [ -x "$CLI_BIN" ] || { echo "measure: no client binary at $CLI_BIN" >&2; exit 1; }
}

# need_wrk: installs wrk (Debian's package, as root) when it is missing.
need_wrk() {
    command -v wrk >/dev/null 2>&1 && return
    echo "measure: installing wrk" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
}

# start_replay ENVELOPES THREADS CONNECTIONS SECONDS NODE_URL OUT: starts
# wrk in the background, posting each envelope of the file (one a line,
# from `sealchain bench --save-envelopes`) once (scripts/wrk-replay.lua),
# for at most SECONDS, its report (with latency percentiles) into OUT; sets
# REPLAY_PID. wrk runs its whole duration even when every thread is done:
# stop it with SIGINT (it then prints its report) once every envelope is
# stored.
start_replay() {
    SEALCHAIN_ENVELOPES="$1" SEALCHAIN_WRK_THREADS="$2" \
        wrk -t "$2" -c "$3" -d "${4}s" --latency --timeout 10s \
        -s scripts/wrk-replay.lua "$5/v1/messages" >"$6" &
    # shellcheck disable=SC2034
    REPLAY_PID=$!
}
