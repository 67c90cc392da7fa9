//! The `sealchain` binary without a node: help texts, key files, and the
//! errors a user meets before any network traffic. (The tests against a
//! real node and Postgres are in `tests/tests/cli.rs`; this file also makes
//! `cargo test -p sealchain-client` build the binary they run.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn sealchain(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealchain"))
        .args(args)
        .current_dir(dir)
        .env_remove("SEALCHAIN_NODE")
        .env_remove("SEALCHAIN_NODE_KEY")
        .env_remove("SEALCHAIN_PIN_FILE")
        .env_remove("SEALCHAIN_CHECKPOINT")
        .env("SEALCHAIN_DATA_DIR", dir.join("data"))
        .output()
        .expect("run sealchain")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// A failure as users see it: non-zero, one `error: ` line, no panic.
fn assert_one_line_error(o: &Output, needle: &str) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {}", stdout(o));
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    err
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let commands: &[&[&str]] = &[
        &[],
        &["keygen"],
        &["node-info"],
        &["send"],
        &["simulate"],
        &["blocks"],
        &["blocks", "count"],
        &["blocks", "get"],
        &["blocks", "head"],
        &["blocks", "hash"],
        &["blocks", "prev"],
        &["blocks", "list"],
        &["verify"],
        &["proof"],
        &["checkpoint"],
        &["monitor"],
        &["bench"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let o = sealchain(dir.path(), &args);
        let help = stdout(&o);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(help.contains("Example"), "{args:?} has no example:\n{help}");
        let example = format!("  sealchain {}", command.join(" "));
        assert!(help.contains(example.trim_end()), "{args:?}: no example of {example:?}");
        for global in ["--node <URL>", "--json", "--node-key <HEX>", "--pin-file <PATH>"] {
            assert!(help.contains(global), "{args:?} lacks {global}");
        }
    }
    // The documented defaults of the classic scenario.
    let help = stdout(&sealchain(dir.path(), &["simulate", "--help"]));
    for default in ["[default: 10]", "[default: 1s]", "[default: 60s]"] {
        assert!(help.contains(default), "simulate --help lacks {default}");
    }
}

#[test]
fn keygen_writes_0600_pkcs8_keys_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let o = sealchain(dir.path(), &["keygen", "--out", "keys", "--count", "3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let created: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 3);
    let keys = dir.path().join("keys");
    assert_eq!(
        std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
        0o700,
        "key directory mode"
    );
    for (i, entry) in created.iter().enumerate() {
        let path = keys.join(format!("client-{i:03}.pem"));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        // The printed id is the public half of the file's key.
        let key = sealchain_shared::keys::load_signing_key(&path).unwrap();
        let id = entry["client_id"].as_str().unwrap();
        assert_eq!(id, hex::encode(key.verifying_key().as_bytes()));
    }

    // Human output names each file and id.
    let o = sealchain(dir.path(), &["keygen", "--out", "more"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("client-000.pem") && text.contains("created 1 client key"),
        "{text}"
    );

    // A second run into the same directory writes nothing.
    let before = std::fs::read(keys.join("client-000.pem")).unwrap();
    let o = sealchain(dir.path(), &["keygen", "--out", "keys", "--count", "5"]);
    assert_one_line_error(&o, "already exists; refusing to overwrite");
    assert_eq!(std::fs::read(keys.join("client-000.pem")).unwrap(), before);
    assert!(
        !keys.join("client-003.pem").exists(),
        "nothing is written when one file exists"
    );
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(sealchain(dir.path(), &["keygen", "--out", "keys"]).status.success());
    let key = dir.path().join("keys/client-000.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Refused before any contact with the (absent) node.
    let o = sealchain(
        dir.path(),
        &[
            "--node",
            "http://127.0.0.1:1",
            "send",
            "--key",
            "keys/client-000.pem",
            "--topic",
            "t",
            "--body",
            "1",
        ],
    );
    assert_one_line_error(&o, "chmod 600 keys/client-000.pem");
    // simulate loads the same way.
    let o = sealchain(
        dir.path(),
        &[
            "--node",
            "http://127.0.0.1:1",
            "simulate",
            "--keys",
            "keys",
            "--clients",
            "1",
        ],
    );
    assert_one_line_error(&o, "mode 0644");
}

#[test]
fn an_unreachable_node_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["node-info"][..],
        &["blocks", "count"],
        &["verify"],
        &["proof", "1"],
        &["bench", "--messages", "1"],
    ] {
        let mut all = vec!["--node", "http://127.0.0.1:1", "--timeout", "5s"];
        all.extend_from_slice(args);
        let o = sealchain(dir.path(), &all);
        assert_one_line_error(&o, "cannot reach the node at http://127.0.0.1:1");
    }
    assert!(!dir.path().join("data").exists(), "no node was pinned");
}

#[test]
fn bad_input_is_refused_locally() {
    let dir = tempfile::tempdir().unwrap();
    assert!(sealchain(dir.path(), &["keygen", "--out", "keys"]).status.success());
    let send = |topic: &str, body: &str| {
        sealchain(
            dir.path(),
            &[
                "--node",
                "http://127.0.0.1:1",
                "send",
                "--key",
                "keys/client-000.pem",
                "--topic",
                topic,
                "--body",
                body,
            ],
        )
    };
    assert_one_line_error(&send("t", "{not json"), "--body is not JSON");
    assert_one_line_error(&send("Bad Topic", "1"), "--topic");
    let o = sealchain(dir.path(), &["simulate", "--interval", "1x"]);
    assert_eq!(o.status.code(), Some(2), "clap usage error");
    assert!(stderr(&o).contains("is not a duration"), "{}", stderr(&o));
    let o = sealchain(
        dir.path(),
        &[
            "--node",
            "http://127.0.0.1:1",
            "simulate",
            "--interval",
            "2s",
            "--duration",
            "1s",
        ],
    );
    assert_one_line_error(&o, "--duration (1s) must be at least --interval (2s)");

    // proof: a SEQ, or --verify FILE with --vkey, never both.
    for args in [
        &["proof"][..],
        &["proof", "--verify", "x.tlog-proof"],
        &["proof", "--vkey", "k"],
        &["proof", "3", "--verify", "x.tlog-proof", "--vkey", "k"],
        &["proof", "--out", "x.tlog-proof"],
    ] {
        let o = sealchain(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    // --verify contacts no node: these fail on the key or the file alone.
    let verify = |file: &str, vkey: &str| {
        sealchain(
            dir.path(),
            &[
                "--node",
                "http://127.0.0.1:1",
                "proof",
                "--verify",
                file,
                "--vkey",
                vkey,
            ],
        )
    };
    assert_one_line_error(&verify("x", "not a key"), "--vkey: malformed verifier key");
    let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert_one_line_error(&verify("missing", vkey), "reading missing");
    std::fs::write(
        dir.path().join("junk.tlog-proof"),
        "c2sp.org/tlog-proof@v1\nindex 01\n\n",
    )
    .unwrap();
    assert_one_line_error(
        &verify("junk.tlog-proof", vkey),
        "junk.tlog-proof is not a valid tlog-proof bundle: line 2: the index is not a decimal",
    );
    let o = sealchain(
        dir.path(),
        &["--node", "http://127.0.0.1:1", "monitor", "--interval", "0s"],
    );
    assert_one_line_error(&o, "--interval must be longer than 0");
}
