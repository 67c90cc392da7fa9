#!/usr/bin/env bash
# Ingest held for minutes on a chain (docs/performance.md, part 10): what a
# node that keeps running pays per message, window by window, from a
# checkpoint on. A short load right after a checkpoint (growth.sh,
# wal-bench.sh) sees the worst of it: the first change to each page after a
# checkpoint logs the whole page, and on a long chain every insert into a
# random-key index touches a page of its own. This script shows how long
# that lasts and what a message costs once it is over.
#
#     SEED_DB=chain10m scripts/seed.sh 10000000
#     scripts/steady.sh chain10m ./seed-keys
#     STEADY_MESSAGES=3000000 STEADY_WINDOW=15 STEADY_SKIP_BUILD=1 scripts/steady.sh chain10m ./seed-keys
#
# On the chain in database DB (keys in KEYS), with the release binaries:
# 1. starts the node, with --max-skew 86400: the envelopes are sealed
#    minutes before the last of them is sent;
# 2. seals STEADY_MESSAGES envelopes (default 2,000,000) from 100 clients
#    (`sealchain bench --save-envelopes`, before any timing);
# 3. loads the messages table's indexes into shared_buffers (pg_prewarm),
#    then runs a CHECKPOINT, so that every run starts from the same point
#    of the checkpoint cycle;
# 4. replays the envelopes with wrk (2 threads, 64 connections, each
#    envelope once) and every STEADY_WINDOW seconds (default 10) prints
#    one row: messages/s; CPU time per message of the node, of the
#    database's Postgres backends, of its autovacuum workers and of the
#    server's shared processes (WAL writer, checkpointer, background
#    writer); and per message the WAL records, full-page images and WAL
#    bytes (pg_stat_wal, which counts the whole server: run nothing else
#    on it meanwhile);
# 5. ends with the same figures over the whole run and over the windows
#    after the first half minute.
#
# Every message stays in the chain (it grows by STEADY_MESSAGES). Needs wrk
# (installed when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
. scripts/measure.sh

DB="${1:?usage: scripts/steady.sh DB KEYS}"
KEYS="${2:?usage: scripts/steady.sh DB KEYS}"
MESSAGES="${STEADY_MESSAGES:-2000000}"
WINDOW="${STEADY_WINDOW:-10}"
CONNECTIONS=64
THREADS=2

say() { echo "steady: $*" >&2; }
need_wrk
# STEADY_SKIP_BUILD, STEADY_NODE_BIN: see release_binaries in measure.sh.
release_binaries STEADY
eval "$(scripts/test-postgres.sh)"
URL="${TEST_DATABASE_URL%/*}/$DB"
WORK="$(mktemp -d)"
NODE_PID=""
WRK_PID=""
cleanup() {
    [ -n "$WRK_PID" ] && kill -INT "$WRK_PID" 2>/dev/null
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
sql() { psql -At "$URL" -c "$1"; }

PORT="$(free_port)"
NODE="http://127.0.0.1:$PORT"
"$NODE_BIN" --listen "127.0.0.1:$PORT" --database-url "$URL" --keys-dir "$KEYS" --log-format json \
    --max-skew 86400 >"$WORK/node.log" 2>&1 &
NODE_PID=$!
wait_ready "$NODE" "$NODE_PID" "$WORK/node.log"

say "chain $DB: $(sql "SELECT next_seq FROM chain_state") messages; sealing $MESSAGES envelopes"
say "Postgres: $(pg_settings "$URL")"
"$CLI_BIN" --node "$NODE" --no-pin --data-dir "$WORK/data" bench --messages "$MESSAGES" --clients 100 \
    --save-envelopes "$WORK/envelopes.jsonl" >&2
say "prewarming the messages indexes, then CHECKPOINT"
prewarm_message_indexes "$URL"
sql "CHECKPOINT" >/dev/null

start_replay "$WORK/envelopes.jsonl" "$THREADS" "$CONNECTIONS" 3600 "$NODE" "$WORK/wrk.txt"
WRK_PID=$REPLAY_PID
# The sampler: one row a window until every envelope is stored (or the
# count stops moving for three windows), then the summaries.
python3 - "$URL" "$DB" "$NODE_PID" "$MESSAGES" "$WINDOW" "$TICK" "$WRK_PID" <<'EOF'
import os, subprocess, sys, time

url, db, node_pid, total, window, tick, wrk_pid = sys.argv[1:8]
node_pid, total, window, tick, wrk_pid = int(node_pid), int(total), float(window), int(tick), int(wrk_pid)
SHARED = ("walwriter", "checkpointer", "background writer")

def psql(query):
    return subprocess.run(["psql", "-At", "-F", " ", url, "-c", query], check=True,
                          capture_output=True, text=True).stdout.split("\n")

def ticks(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])

def sample():
    rows = psql(f"""SELECT 'seq', next_seq::text FROM chain_state
        UNION ALL SELECT 'wal', wal_records || ' ' || wal_fpi || ' ' || wal_bytes FROM pg_stat_wal
        UNION ALL SELECT CASE backend_type WHEN 'autovacuum worker' THEN 'vacuum' ELSE 'backend' END, pid::text
            FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()
        UNION ALL SELECT 'shared', pid::text FROM pg_stat_activity WHERE backend_type IN {SHARED}""")
    s = {"t": time.monotonic(), "node": ticks(node_pid), "backend": {}, "vacuum": {}, "shared": {}}
    for row in filter(None, rows):
        kind, value = row.split(" ", 1)
        if kind == "seq":
            s["seq"] = int(value)
        elif kind == "wal":
            s["wal"] = [int(v) for v in value.split()]
        else:
            pid = int(value)
            s[kind][pid] = ticks(pid) or 0
    return s

def cpu(a, b, kind):
    # A process that started within the window counts whole.
    return sum(t - a[kind].get(pid, 0) for pid, t in b[kind].items())

FIELDS = ("seconds", "messages", "node", "backend", "vacuum", "shared", "records", "fpi", "wal")

def delta(a, b):
    """What one window cost, in seconds, messages, ticks and WAL counts."""
    return dict(zip(FIELDS, (b["t"] - a["t"], b["seq"] - a["seq"], b["node"] - a["node"], cpu(a, b, "backend"),
                           cpu(a, b, "vacuum"), cpu(a, b, "shared"),
                           *(y - x for x, y in zip(a["wal"], b["wal"])))))

def total_of(windows):
    """The windows summed: a process that lived within one window counts."""
    return {k: sum(w[k] for w in windows) for k in FIELDS}

def row(d):
    n = max(d["messages"], 1)
    us = lambda k: d[k] * 1e6 / tick / n
    return (f"{n / d['seconds']:8.0f} {us('node'):7.1f} {us('backend'):7.1f} {us('vacuum'):7.1f} "
            f"{us('shared'):7.1f} {d['records'] / n:7.2f} {d['fpi'] / n:6.3f} {d['wal'] / n:7.0f}")

header = "    time     chain    msg/s  node µs   pg µs  vacuum  shared  records   FPIs   WAL B  (per message)"
first = sample()
start = first["seq"]
print(header, flush=True)
samples, windows, still = [first], [], 0
while True:
    # The window ends early when the last envelope is stored, so that the
    # last row and the summaries do not count the time after it. The count
    # is polled only when the last window's pace would finish within this
    # one: each poll is a psql process on the machine being measured.
    deadline = samples[-1]["t"] + window
    stored = samples[-1]["seq"] - start
    if windows and stored + 1.5 * windows[-1]["messages"] < total:
        time.sleep(window)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if int(psql("SELECT next_seq FROM chain_state")[0]) - start >= total:
            break
    s = sample()
    windows.append(delta(samples[-1], s))
    samples.append(s)
    if windows[-1]["messages"] > 0:
        still = 0
        print(f"{s['t'] - first['t']:7.0f}s {s['seq']:9d} {row(windows[-1])}", flush=True)
    else:
        still += 1
    if s["seq"] - start >= total or still >= 3:
        break
os.kill(wrk_pid, 2)
print(f"whole run          {row(total_of(windows))}")
# The windows that start 30 s or more after the first sample.
later = [w for w, s in zip(windows, samples) if s["t"] - first["t"] >= 30]
if later:
    print(f"after 30 s         {row(total_of(later))}")
EOF
wait "$WRK_PID" 2>/dev/null || true
WRK_PID=""
grep -E "Non-2xx|Socket errors" "$WORK/wrk.txt" >&2 || true
say "chain $DB: $(sql "SELECT next_seq FROM chain_state") messages at the end"
