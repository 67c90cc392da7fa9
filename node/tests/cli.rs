//! The `sealchain-node` binary's own command line: `--help` and `keygen`.
//! (Serving is covered by the workspace's integration tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn node() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sealchain-node"))
}

#[test]
fn help_names_every_option_and_its_environment_variable() {
    let out = node().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--listen",
        "SEALCHAIN_LISTEN",
        "--database-url",
        "DATABASE_URL",
        "--keys-dir",
        "SEALCHAIN_KEYS_DIR",
        "--block-size",
        "--max-skew",
        "--max-message-bytes",
        "--client-policy",
        "--admin-token",
        "SEALCHAIN_ADMIN_TOKEN",
        "--log-format",
        "--db-connect-timeout",
        "SEALCHAIN_DB_CONNECT_TIMEOUT",
        "--ingest-timeout",
        "keygen",
    ] {
        assert!(help.contains(needle), "--help does not mention {needle}");
    }
}

#[test]
fn keygen_writes_two_private_key_files_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let out = node().args(["keygen", "--keys-dir"]).arg(&keys).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("signing key (Ed25519)"));
    assert!(stdout.contains("encryption key (X25519)"));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
        for file in ["signing.pem", "encryption.pem"] {
            let mode = std::fs::metadata(keys.join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    let before = std::fs::read(keys.join("signing.pem")).unwrap();
    let again = node().args(["keygen", "--keys-dir"]).arg(&keys).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(keys.join("signing.pem")).unwrap(), before);
}

#[test]
fn serving_without_a_database_url_is_a_clear_error() {
    let out = node()
        .env_remove("DATABASE_URL")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--database-url"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn bad_option_values_are_refused_by_name() {
    for (flag, value) in [
        ("--block-size", "0"),
        ("--client-policy", "closed"),
        ("--max-skew", "-1"),
        // Entry bundles carry each signed message with a 16-bit length.
        ("--max-message-bytes", "65472"),
    ] {
        let out = node().arg(format!("{flag}={value}")).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(flag.trim_start_matches('-')));
    }
}

#[test]
fn unservable_limits_are_refused_before_anything_starts() {
    // The database URL points nowhere: the settings are refused first, and
    // no keys are created.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    for (args, needle) in [
        (
            &["--block-size", "100000", "--max-message-bytes", "65471"][..],
            "more than the 268435456 a block read",
        ),
        (
            &["--max-message-bytes", "65471", "--max-body-bytes", "65536"][..],
            "--max-body-bytes 65536 is too small",
        ),
    ] {
        let out = node()
            .args(args)
            .arg("--database-url")
            .arg("postgres://nobody@127.0.0.1:1/none")
            .arg("--keys-dir")
            .arg(&keys)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!keys.exists(), "nothing was created");
    }
}

#[test]
fn an_unreachable_database_is_waited_for_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = node()
        .args([
            "--db-connect-timeout",
            "1",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .arg("--keys-dir")
        .arg(dir.path().join("keys"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("database not reachable yet; waiting"),
        "each retry is logged: {all}"
    );
    assert!(
        all.contains("--db-connect-timeout"),
        "the error names the setting: {all}"
    );
}
