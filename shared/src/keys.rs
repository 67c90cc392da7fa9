//! Identities and key files (PROTOCOL §1).
//!
//! > Private keys are stored as PKCS#8 v1 PEM (`-----BEGIN PRIVATE KEY-----`;
//! > Ed25519 OID 1.3.101.112, X25519 OID 1.3.101.110), one key per file,
//! > created with mode 0600, so that `openssl pkey -in FILE -pubout` reads
//! > them. A key file that is readable by group or others is refused with a
//! > clear error.
//!
//! Keys are made from the operating system's random number generator. Files
//! are created with `O_EXCL`, so an existing key is never overwritten, and
//! with mode 0600 from the first byte (no window in which the file is
//! readable by others).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use pkcs8::der::asn1::OctetStringRef;
use pkcs8::spki::AlgorithmIdentifierRef;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding, ObjectIdentifier, PrivateKeyInfoRef};
use zeroize::{Zeroize, Zeroizing};

/// Object identifier of X25519 keys (RFC 8410).
pub const X25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");

/// Why a key could not be made, written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
    /// The file exists; keys are never overwritten.
    #[error("{} already exists; refusing to overwrite a key file (move it away or choose another path)", .0.display())]
    Exists(PathBuf),
    /// The file is readable or writable by group or others.
    #[error("{path} has mode {mode:04o}, so other users can read it; refusing to use it (fix with: chmod 600 {path})", path = .path.display())]
    LoosePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading or writing the file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a PKCS#8 PEM private key of the expected kind.
    #[error("{}: not a PKCS#8 PEM {kind} private key ({reason})", .path.display())]
    Format {
        /// The key file.
        path: PathBuf,
        /// `Ed25519` or `X25519`.
        kind: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// PEM encoding failed (only on allocation-level failures).
    #[error("could not encode the key as PKCS#8 PEM: {0}")]
    Encode(String),
}

/// Fills a fresh 32-byte secret from the OS random number generator.
fn random_secret() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|_| KeyError::Rng)?;
    Ok(bytes)
}

/// A new Ed25519 signing key (a client identity or the node's signing key).
pub fn generate_signing_key() -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&*random_secret()?))
}

/// The `client_id` of a key: hex of its 32-byte Ed25519 public key.
pub fn client_id(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// The node's X25519 secret key, the HPKE recipient key, with its public
/// key computed once: opening an envelope needs both, and deriving the
/// public key is a full scalar multiplication.
///
/// The secret is zeroized on drop; the `Debug` output is `[redacted]`.
#[derive(Clone)]
pub struct EncryptionKey {
    secret: x25519_dalek::StaticSecret,
    public: x25519_dalek::PublicKey,
}

impl EncryptionKey {
    /// A new key from the OS random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self::from_bytes(*random_secret()?))
    }

    /// Wraps raw secret bytes (RFC 7748 clamping happens at use).
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let secret = x25519_dalek::StaticSecret::from(bytes);
        bytes.zeroize();
        let public = x25519_dalek::PublicKey::from(&secret);
        Self { secret, public }
    }

    /// The public key clients seal envelopes to.
    pub fn public_key(&self) -> x25519_dalek::PublicKey {
        self.public
    }

    pub(crate) fn secret(&self) -> &x25519_dalek::StaticSecret {
        &self.secret
    }

    /// PKCS#8 v1 PEM (`-----BEGIN PRIVATE KEY-----`, OID 1.3.101.110).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        // RFC 8410 §7: the private key is an OCTET STRING inside the
        // PrivateKeyInfo's OCTET STRING.
        let mut inner = Zeroizing::new([0u8; 34]);
        inner[0] = 0x04;
        inner[1] = 0x20;
        inner[2..].copy_from_slice(self.secret.as_bytes());
        let info = PrivateKeyInfoRef {
            algorithm: AlgorithmIdentifierRef {
                oid: X25519_OID,
                parameters: None,
            },
            private_key: OctetStringRef::new(inner.as_ref()).map_err(|e| KeyError::Encode(e.to_string()))?,
            public_key: None,
        };
        let doc = pkcs8::SecretDocument::encode_msg(&info).map_err(|e| KeyError::Encode(e.to_string()))?;
        doc.to_pem("PRIVATE KEY", LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Parses a PKCS#8 PEM X25519 private key (v1, or v2 with a public key).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let (label, doc) = pkcs8::SecretDocument::from_pem(pem).map_err(|e| e.to_string())?;
        if label != "PRIVATE KEY" {
            return Err(format!("PEM label is {label:?}, expected \"PRIVATE KEY\""));
        }
        let info = PrivateKeyInfoRef::try_from(doc.as_bytes()).map_err(|e| e.to_string())?;
        if info.algorithm.oid != X25519_OID {
            return Err(format!(
                "algorithm is {}, expected X25519 ({X25519_OID})",
                info.algorithm.oid
            ));
        }
        if info.algorithm.parameters.is_some() {
            return Err("X25519 keys take no algorithm parameters".into());
        }
        match info.private_key.as_bytes() {
            [0x04, 0x20, rest @ ..] if rest.len() == 32 => {
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(rest);
                Ok(Self::from_bytes(bytes))
            }
            _ => Err("private key is not a 32-byte OCTET STRING".into()),
        }
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

/// PKCS#8 v1 PEM of an Ed25519 signing key (no embedded public key, the
/// form `openssl genpkey -algorithm ed25519` writes).
pub fn signing_key_to_pem(key: &SigningKey) -> Result<Zeroizing<String>, KeyError> {
    let bytes = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    bytes
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))
}

/// Parses a PKCS#8 PEM Ed25519 private key (v1, or v2 whose public key must
/// match the secret).
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())
}

/// Creates a directory for key files (and its parents) with mode 0700,
/// unless it exists already.
pub fn create_key_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| KeyError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// Creates `path` with mode 0600 and writes `contents`; refuses if it exists.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists(path.to_owned())
        } else {
            io(e)
        }
    })?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a secret file's bytes, refusing one that group or others may read.
fn read_secret_bytes(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::LoosePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    fs::read(path).map(Zeroizing::new).map_err(io)
}

/// Reads a PEM key file. A file that is not text (a DER key, say) is a
/// [`KeyError::Format`] like any other file that is not a PEM key, not an
/// I/O error.
fn read_key_pem(path: &Path, kind: &'static str) -> Result<Zeroizing<String>, KeyError> {
    let bytes = read_secret_bytes(path)?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(KeyError::Format {
            path: path.to_owned(),
            kind,
            reason: "the file is not text, so not PEM (a DER key converts with `openssl pkey -inform DER`)".into(),
        }),
    }
}

/// Writes a new Ed25519 key file (mode 0600, never overwriting).
pub fn save_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    write_secret_file(path, signing_key_to_pem(key)?.as_bytes())
}

/// Loads an Ed25519 key file, checking its permissions first.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let pem = read_key_pem(path, "Ed25519")?;
    signing_key_from_pem(&pem).map_err(|reason| KeyError::Format {
        path: path.to_owned(),
        kind: "Ed25519",
        reason,
    })
}

/// Writes a new X25519 key file (mode 0600, never overwriting).
pub fn save_encryption_key(path: &Path, key: &EncryptionKey) -> Result<(), KeyError> {
    write_secret_file(path, key.to_pem()?.as_bytes())
}

/// Loads an X25519 key file, checking its permissions first.
pub fn load_encryption_key(path: &Path) -> Result<EncryptionKey, KeyError> {
    let pem = read_key_pem(path, "X25519")?;
    EncryptionKey::from_pem(&pem).map_err(|reason| KeyError::Format {
        path: path.to_owned(),
        kind: "X25519",
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_pem_round_trip_is_pkcs8_v1() {
        let key = generate_signing_key().unwrap();
        let pem = signing_key_to_pem(&key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = signing_key_from_pem(&pem).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        // v1 has version 0 and no public key: 48 bytes of DER.
        let (_, doc) = pkcs8::SecretDocument::from_pem(&pem).unwrap();
        assert_eq!(doc.as_bytes().len(), 48);
    }

    #[test]
    fn encryption_key_pem_round_trip() {
        let key = EncryptionKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        let back = EncryptionKey::from_pem(&pem).unwrap();
        assert_eq!(back.public_key(), key.public_key());
    }

    #[test]
    fn kinds_are_not_confused() {
        let ed = signing_key_to_pem(&generate_signing_key().unwrap()).unwrap();
        let x = EncryptionKey::generate().unwrap().to_pem().unwrap();
        assert!(EncryptionKey::from_pem(&ed).unwrap_err().contains("expected X25519"));
        assert!(signing_key_from_pem(&x).is_err());
        assert!(signing_key_from_pem("not a key").is_err());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let key = EncryptionKey::from_bytes([7; 32]);
        assert_eq!(format!("{key:?}"), "EncryptionKey([redacted])");
    }
}
