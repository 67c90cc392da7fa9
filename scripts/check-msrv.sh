#!/usr/bin/env bash
# Fails when the workspace's declared `rust-version` is below what the
# locked dependencies need: the largest `rust-version` among the packages
# of Cargo.lock (as `cargo metadata --locked` resolves them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --locked | python3 -c '
import json, sys

meta = json.load(sys.stdin)
members = set(meta["workspace_members"])

def version(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))

declared = {p["rust_version"] for p in meta["packages"] if p["id"] in members}
if len(declared) != 1 or None in declared:
    sys.exit(f"check-msrv: the workspace members declare rust-version {sorted(map(str, declared))}; expected one value")
declared = declared.pop()
needed = max(
    ((version(p["rust_version"]), p["rust_version"], p["name"], p["version"])
     for p in meta["packages"] if p["id"] not in members and p.get("rust_version")),
    default=None,
)
if needed and needed[0] > version(declared):
    sys.exit(f"check-msrv: Cargo.toml declares rust-version {declared}, but {needed[2]} {needed[3]} needs {needed[1]}")
print(f"check-msrv: rust-version {declared} covers every locked dependency (highest: {needed[2]} {needed[3]} needs {needed[1]})")
'
