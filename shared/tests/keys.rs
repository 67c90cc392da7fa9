//! Key files (PROTOCOL §1): PKCS#8 v1 PEM, Ed25519 (OID 1.3.101.112) and
//! X25519 (OID 1.3.101.110), created with mode 0600, never overwritten,
//! refused when group or others may read them, and readable by
//! `openssl pkey` (and the other way round: keys from `openssl genpkey`
//! load).

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use sealchain_shared::keys::{self, EncryptionKey, KeyError};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn saved_key_files_have_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("node.ed25519.pem");
    let encryption = dir.path().join("node.x25519.pem");
    keys::save_signing_key(&signing, &keys::generate_signing_key().unwrap()).unwrap();
    keys::save_encryption_key(&encryption, &EncryptionKey::generate().unwrap()).unwrap();
    assert_eq!(mode(&signing), 0o600);
    assert_eq!(mode(&encryption), 0o600);
    for path in [&signing, &encryption] {
        let pem = fs::read_to_string(path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"), "{pem}");
    }
}

#[test]
fn saved_key_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("client.pem");
    let encryption = dir.path().join("x25519.pem");
    let sk = keys::generate_signing_key().unwrap();
    let ek = EncryptionKey::generate().unwrap();
    keys::save_signing_key(&signing, &sk).unwrap();
    keys::save_encryption_key(&encryption, &ek).unwrap();
    assert_eq!(keys::load_signing_key(&signing).unwrap().to_bytes(), sk.to_bytes());
    assert_eq!(
        keys::load_encryption_key(&encryption).unwrap().public_key(),
        ek.public_key()
    );
}

#[test]
fn saving_over_an_existing_file_fails_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pem");
    keys::save_signing_key(&path, &keys::generate_signing_key().unwrap()).unwrap();
    let before = fs::read(&path).unwrap();

    let err = keys::save_signing_key(&path, &keys::generate_signing_key().unwrap()).unwrap_err();
    assert!(matches!(&err, KeyError::Exists(p) if p == &path), "{err:?}");
    let err = keys::save_encryption_key(&path, &EncryptionKey::generate().unwrap()).unwrap_err();
    assert!(matches!(&err, KeyError::Exists(p) if p == &path), "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(mode(&path), 0o600);

    // Any existing file, not only key files.
    let other = dir.path().join("notes.txt");
    fs::write(&other, b"keep me").unwrap();
    let err = keys::save_encryption_key(&other, &EncryptionKey::generate().unwrap()).unwrap_err();
    assert!(matches!(err, KeyError::Exists(_)), "{err:?}");
    assert_eq!(fs::read(&other).unwrap(), b"keep me");
}

#[test]
fn loose_permissions_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("ed.pem");
    let encryption = dir.path().join("x.pem");
    keys::save_signing_key(&signing, &keys::generate_signing_key().unwrap()).unwrap();
    keys::save_encryption_key(&encryption, &EncryptionKey::generate().unwrap()).unwrap();

    for loose in [0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o601, 0o777] {
        chmod(&signing, loose);
        chmod(&encryption, loose);
        let errors = [
            keys::load_signing_key(&signing).unwrap_err(),
            keys::load_encryption_key(&encryption).unwrap_err(),
        ];
        for (err, path) in errors.iter().zip([&signing, &encryption]) {
            let KeyError::LoosePermissions { path: p, mode } = err else {
                panic!("mode {loose:o}: expected LoosePermissions, got {err:?}");
            };
            assert_eq!(p, path);
            assert_eq!(*mode, loose);
            let text = err.to_string();
            assert!(
                text.contains(&format!("chmod 600 {}", path.display())),
                "mode {loose:o}: {text}"
            );
        }
    }
    // Tighter than 0600 is fine.
    for tight in [0o600, 0o400] {
        chmod(&signing, tight);
        chmod(&encryption, tight);
        keys::load_signing_key(&signing).unwrap();
        keys::load_encryption_key(&encryption).unwrap();
    }
}

#[test]
fn garbage_files_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A DER (not PEM) PKCS#8 Ed25519 key: the RFC 8032 TEST 1 secret.
    let der = hex::decode(
        "302e020100300506032b657004220420\
         9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    )
    .unwrap();
    let cases: [(&str, &[u8]); 6] = [
        ("der", &der),
        ("empty", b""),
        ("text", b"not a key\n"),
        ("binary", &[0xff, 0x00, 0x13, 0x37]),
        (
            "bad base64",
            b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
        ),
        (
            "wrong label",
            b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
        ),
    ];
    for (name, contents) in cases {
        let path = dir.path().join(name);
        keys::write_secret_file(&path, contents).unwrap();
        let err = keys::load_signing_key(&path).unwrap_err();
        assert!(
            matches!(&err, KeyError::Format { kind: "Ed25519", path: p, .. } if p == &path),
            "{name}: {err:?}"
        );
        let err = keys::load_encryption_key(&path).unwrap_err();
        assert!(
            matches!(&err, KeyError::Format { kind: "X25519", path: p, .. } if p == &path),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn a_missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.pem");
    assert!(matches!(keys::load_signing_key(&path), Err(KeyError::Io { .. })));
    assert!(matches!(keys::load_encryption_key(&path), Err(KeyError::Io { .. })));
}

#[test]
fn key_kinds_are_not_confused() {
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("ed.pem");
    let encryption = dir.path().join("x.pem");
    keys::save_signing_key(&signing, &keys::generate_signing_key().unwrap()).unwrap();
    keys::save_encryption_key(&encryption, &EncryptionKey::generate().unwrap()).unwrap();

    let err = keys::load_encryption_key(&signing).unwrap_err();
    assert!(matches!(err, KeyError::Format { kind: "X25519", .. }), "{err:?}");
    let err = keys::load_signing_key(&encryption).unwrap_err();
    assert!(matches!(err, KeyError::Format { kind: "Ed25519", .. }), "{err:?}");
}

// ---------------------------------------------------------------------------
// Interoperability with OpenSSL.

/// Runs `openssl` with `args`. Never skipped: without openssl the
/// interop tests fail and say how to install it (CI installs it).
fn openssl(args: &[&str]) -> Output {
    match Command::new("openssl").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "the openssl command is needed for the OpenSSL interop tests and was not found: \
             install it (Debian/Ubuntu: apt-get install openssl; macOS: brew install openssl)"
        ),
        Err(e) => panic!("running openssl: {e}"),
    }
}

fn openssl_ok(args: &[&str]) -> Vec<u8> {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The raw 32-byte public key of a key file, from openssl's
/// SubjectPublicKeyInfo (the key is its last 32 bytes for both curves).
fn openssl_public_key(path: &Path) -> [u8; 32] {
    let der = openssl_ok(&["pkey", "-in", path.to_str().unwrap(), "-pubout", "-outform", "DER"]);
    assert_eq!(der.len(), 44, "SubjectPublicKeyInfo of a 25519 key");
    der[der.len() - 32..].try_into().unwrap()
}

#[test]
fn openssl_reads_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("ed.pem");
    let encryption = dir.path().join("x.pem");
    let sk = keys::generate_signing_key().unwrap();
    let ek = EncryptionKey::generate().unwrap();
    keys::save_signing_key(&signing, &sk).unwrap();
    keys::save_encryption_key(&encryption, &ek).unwrap();

    for path in [&signing, &encryption] {
        let pem = openssl_ok(&["pkey", "-in", path.to_str().unwrap(), "-pubout"]);
        assert!(
            String::from_utf8(pem)
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
    }
    let text = String::from_utf8(openssl_ok(&[
        "pkey",
        "-in",
        signing.to_str().unwrap(),
        "-noout",
        "-text",
    ]))
    .unwrap();
    assert!(text.starts_with("ED25519 Private-Key"), "{text}");
    let text = String::from_utf8(openssl_ok(&[
        "pkey",
        "-in",
        encryption.to_str().unwrap(),
        "-noout",
        "-text",
    ]))
    .unwrap();
    assert!(text.starts_with("X25519 Private-Key"), "{text}");

    assert_eq!(openssl_public_key(&signing), sk.verifying_key().to_bytes());
    assert_eq!(openssl_public_key(&encryption), ek.public_key().to_bytes());
}

#[test]
fn openssl_generated_keys_load() {
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("ed.pem");
    let encryption = dir.path().join("x.pem");
    openssl_ok(&["genpkey", "-algorithm", "ed25519", "-out", signing.to_str().unwrap()]);
    openssl_ok(&["genpkey", "-algorithm", "x25519", "-out", encryption.to_str().unwrap()]);
    chmod(&signing, 0o600);
    chmod(&encryption, 0o600);

    let sk = keys::load_signing_key(&signing).unwrap();
    let ek = keys::load_encryption_key(&encryption).unwrap();
    assert_eq!(sk.verifying_key().to_bytes(), openssl_public_key(&signing));
    assert_eq!(ek.public_key().to_bytes(), openssl_public_key(&encryption));

    // Ours re-encodes them as PKCS#8 v1, which openssl reads back to the
    // same public keys.
    let resaved_signing = dir.path().join("ed-again.pem");
    let resaved_encryption = dir.path().join("x-again.pem");
    keys::save_signing_key(&resaved_signing, &sk).unwrap();
    keys::save_encryption_key(&resaved_encryption, &ek).unwrap();
    assert_eq!(openssl_public_key(&resaved_signing), openssl_public_key(&signing));
    assert_eq!(openssl_public_key(&resaved_encryption), openssl_public_key(&encryption));
}
