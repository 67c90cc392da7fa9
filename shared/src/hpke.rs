//! HPKE (RFC 9180) base mode, single shot, for the one suite the protocol
//! uses (PROTOCOL §3):
//!
//! > DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20Poly1305
//! > (kem 0x0020, kdf 0x0001, aead 0x0003) … The node checks that the DH
//! > output is not all zero (RFC 9180 §7.1.4).
//!
//! Built from `x25519-dalek`, `curve25519-dalek`, `hkdf` and
//! `chacha20poly1305` following RFC 9180 §4 (LabeledExtract /
//! LabeledExpand), §4.1 (DHKEM), §5.1 (key schedule) and §5.2 (the first
//! nonce, sequence number 0). Only the
//! sequence-0 encryption exists here: the protocol seals one message per
//! envelope, so a context is never reused.
//!
//! Every way an envelope can fail to open (an all-zero DH output, a wrong
//! key, a tampered or truncated ciphertext) is the one opaque
//! [`HpkeError::Open`].

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use curve25519_dalek::montgomery::MontgomeryPoint;
use hkdf::{Hkdf, HkdfExtract};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// KEM identifier of DHKEM(X25519, HKDF-SHA256).
pub const KEM_ID: u16 = 0x0020;
/// KDF identifier of HKDF-SHA256.
pub const KDF_ID: u16 = 0x0001;
/// AEAD identifier of ChaCha20Poly1305.
pub const AEAD_ID: u16 = 0x0003;
/// Length of `enc`, the serialized ephemeral public key.
pub const ENC_LEN: usize = 32;
/// Length of the AEAD tag every ciphertext carries.
pub const TAG_LEN: usize = 16;

/// `suite_id` for the KEM: `"KEM" || I2OSP(kem_id, 2)`.
const KEM_SUITE_ID: [u8; 5] = [b'K', b'E', b'M', 0x00, 0x20];
/// `suite_id` for the key schedule: `"HPKE" || kem_id || kdf_id || aead_id`.
const HPKE_SUITE_ID: [u8; 10] = [b'H', b'P', b'K', b'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x03];
const VERSION_LABEL: &[u8] = b"HPKE-v1";
/// Base mode.
const MODE_BASE: u8 = 0x00;

/// HPKE failures. Deliberately small and opaque: nothing here says why an
/// envelope did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpkeError {
    /// The envelope could not be opened.
    #[error("the envelope could not be opened")]
    Open,
    /// Sealing to this public key gives an all-zero DH output (a small-order
    /// point): it is not a usable recipient key.
    #[error("the recipient public key is not a valid X25519 key")]
    InvalidRecipientKey,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
}

/// `LabeledExtract(salt, label, ikm)`, returning the HKDF state to expand from.
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> (Zeroizing<[u8; 32]>, Hkdf<Sha256>) {
    let mut extract = HkdfExtract::<Sha256>::new(Some(salt));
    extract.input_ikm(VERSION_LABEL);
    extract.input_ikm(suite_id);
    extract.input_ikm(label);
    extract.input_ikm(ikm);
    let (prk, hkdf) = extract.finalize();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&prk);
    (out, hkdf)
}

/// `LabeledExpand(prk, label, info, L)`.
fn labeled_expand(suite_id: &[u8], prk: &Hkdf<Sha256>, label: &[u8], info: &[u8], out: &mut [u8]) {
    // L is at most 32 here, far below HKDF-SHA256's limit of 255 * 32 and
    // below 2^16, so neither the length prefix nor expand can fail.
    let len = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    let ok = prk.expand_multi_info(&[&len, VERSION_LABEL, suite_id, label, info], out);
    debug_assert!(ok.is_ok());
}

/// A KEM shared secret. Zeroized on drop.
#[derive(Clone)]
pub struct SharedSecret(Zeroizing<[u8; 32]>);

impl SharedSecret {
    /// The raw bytes (for test vectors).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret([redacted])")
    }
}

/// DHKEM `ExtractAndExpand(dh, kem_context)`.
fn extract_and_expand(dh: &[u8; 32], enc: &[u8; 32], pk_r: &[u8; 32]) -> SharedSecret {
    let (_, prk) = labeled_extract(&KEM_SUITE_ID, b"", b"eae_prk", dh);
    let mut kem_context = [0u8; 64];
    kem_context[..32].copy_from_slice(enc);
    kem_context[32..].copy_from_slice(pk_r);
    let mut shared = Zeroizing::new([0u8; 32]);
    labeled_expand(&KEM_SUITE_ID, &prk, b"shared_secret", &kem_context, shared.as_mut());
    SharedSecret(shared)
}

/// DHKEM `Encap` with a given ephemeral secret: returns the shared secret
/// and `enc`. Public so test vectors can fix the ephemeral key; real
/// senders use [`seal_base`], which draws a fresh one.
pub fn encap_with(sk_e: &StaticSecret, pk_r: &PublicKey) -> Result<(SharedSecret, [u8; ENC_LEN]), HpkeError> {
    let dh = x25519(sk_e, pk_r.as_bytes());
    if is_all_zero(&dh) {
        return Err(HpkeError::InvalidRecipientKey);
    }
    let enc = PublicKey::from(sk_e).to_bytes();
    Ok((extract_and_expand(&dh, &enc, pk_r.as_bytes()), enc))
}

/// DHKEM `Decap`: refuses an all-zero DH output (RFC 9180 §7.1.4).
///
/// `pk_r` must be the public key of `sk_r`; it enters the KEM context.
/// The caller keeps it beside the secret, because deriving it here would
/// cost a second scalar multiplication for every envelope (as much again as
/// the Diffie-Hellman itself).
pub fn decap(enc: &[u8; ENC_LEN], sk_r: &StaticSecret, pk_r: &PublicKey) -> Result<SharedSecret, HpkeError> {
    let dh = x25519(sk_r, enc);
    if is_all_zero(&dh) {
        return Err(HpkeError::Open);
    }
    Ok(extract_and_expand(&dh, enc, pk_r.as_bytes()))
}

/// The X25519 function of RFC 7748 §5, which [`decap`] and [`encap_with`]
/// use: the u-coordinate of `clamp(secret) · u`, byte for byte what `x25519-dalek`'s
/// `diffie_hellman` returns (the tests compare the two on every kind of
/// input, in `shared/tests/x25519.rs`), in less than half of its time where the CPU has AVX-512 IFMA
/// (docs/performance.md, part 7).
///
/// `x25519-dalek` runs the Montgomery ladder, whose field arithmetic has no
/// vectorised form in `curve25519-dalek`. A `u` on the curve is instead
/// mapped to an Edwards point, multiplied there (the constant-time
/// variable-base multiplication, which uses the AVX2 or AVX-512 backend the
/// CPU offers) and mapped back; the u-coordinate of the product does not
/// depend on which of the two points with that `u` was taken. A `u` on the
/// quadratic twist, or `u = -1`, has no Edwards point and goes through the
/// ladder as before. Both paths ignore the top bit of `u` and read a
/// non-canonical `u` modulo p, as RFC 7748 requires. Which path is taken
/// depends on the public `u` only, never on the secret.
pub fn x25519(secret: &StaticSecret, u: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let scalar = Zeroizing::new(secret.to_bytes());
    let point = MontgomeryPoint(*u);
    let product = match point.to_edwards(0) {
        Some(edwards) => Zeroizing::new(edwards.mul_clamped(*scalar)).to_montgomery(),
        None => point.mul_clamped(*scalar),
    };
    Zeroizing::new(product.to_bytes())
}

/// RFC 9180 §7.1.4: an all-zero DH output means a small-order point.
fn is_all_zero(dh: &[u8; 32]) -> bool {
    dh.iter().fold(0u8, |acc, byte| acc | byte) == 0
}

/// The AEAD key and base nonce of a base-mode context (RFC 9180 §5.1).
pub struct Context {
    key: Zeroizing<[u8; 32]>,
    base_nonce: [u8; 12],
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Context([redacted])")
    }
}

impl Context {
    /// `KeySchedule(mode_base, shared_secret, info, "", "")`.
    pub fn base(shared_secret: &SharedSecret, info: &[u8]) -> Self {
        let (psk_id_hash, _) = labeled_extract(&HPKE_SUITE_ID, b"", b"psk_id_hash", b"");
        let (info_hash, _) = labeled_extract(&HPKE_SUITE_ID, b"", b"info_hash", info);
        let mut ks_context = [0u8; 65];
        ks_context[0] = MODE_BASE;
        ks_context[1..33].copy_from_slice(psk_id_hash.as_ref());
        ks_context[33..].copy_from_slice(info_hash.as_ref());
        let (_, secret) = labeled_extract(&HPKE_SUITE_ID, shared_secret.as_bytes(), b"secret", b"");
        let mut key = Zeroizing::new([0u8; 32]);
        labeled_expand(&HPKE_SUITE_ID, &secret, b"key", &ks_context, key.as_mut());
        let mut base_nonce = [0u8; 12];
        labeled_expand(&HPKE_SUITE_ID, &secret, b"base_nonce", &ks_context, &mut base_nonce);
        Self { key, base_nonce }
    }

    /// The AEAD key (for test vectors).
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The base nonce, which is also the nonce of sequence number 0.
    pub fn base_nonce(&self) -> &[u8; 12] {
        &self.base_nonce
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&(*self.key).into())
    }

    /// `ContextS.Seal(aad, pt)` at sequence number 0.
    pub fn seal(&self, aad: &[u8], pt: &[u8]) -> Vec<u8> {
        // ChaCha20Poly1305 encryption fails only for plaintexts beyond
        // 2^38 bytes, which no caller can hold in memory.
        self.cipher()
            .encrypt(&self.base_nonce.into(), Payload { msg: pt, aad })
            .unwrap_or_default()
    }

    /// `ContextR.Open(aad, ct)` at sequence number 0.
    pub fn open(&self, aad: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
        self.cipher()
            .decrypt(&self.base_nonce.into(), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| HpkeError::Open)
    }
}

/// Single-shot `Seal` in base mode with a fresh ephemeral key.
pub fn seal_base(pk_r: &PublicKey, info: &[u8], aad: &[u8], pt: &[u8]) -> Result<([u8; ENC_LEN], Vec<u8>), HpkeError> {
    let mut ikm = Zeroizing::new([0u8; 32]);
    getrandom::fill(ikm.as_mut()).map_err(|_| HpkeError::Rng)?;
    let sk_e = StaticSecret::from(*ikm);
    seal_base_with(&sk_e, pk_r, info, aad, pt)
}

/// Single-shot `Seal` with a given ephemeral secret (deterministic; for
/// test vectors and fixtures only).
pub fn seal_base_with(
    sk_e: &StaticSecret,
    pk_r: &PublicKey,
    info: &[u8],
    aad: &[u8],
    pt: &[u8],
) -> Result<([u8; ENC_LEN], Vec<u8>), HpkeError> {
    let (shared, enc) = encap_with(sk_e, pk_r)?;
    Ok((enc, Context::base(&shared, info).seal(aad, pt)))
}

/// Single-shot `Open` in base mode; `pk_r` is the public key of `sk_r`
/// (see [`decap`]).
pub fn open_base(
    sk_r: &StaticSecret,
    pk_r: &PublicKey,
    enc: &[u8; ENC_LEN],
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
    let shared = decap(enc, sk_r, pk_r)?;
    Context::base(&shared, info).open(aad, ct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let sk_r = StaticSecret::from([1u8; 32]);
        let pk_r = PublicKey::from(&sk_r);
        let (enc, ct) = seal_base(&pk_r, b"info", b"aad", b"hello").unwrap();
        assert_eq!(ct.len(), 5 + TAG_LEN);
        assert_eq!(
            &open_base(&sk_r, &pk_r, &enc, b"info", b"aad", &ct).unwrap()[..],
            b"hello"
        );
        let other = StaticSecret::from([2u8; 32]);
        let other_pk = PublicKey::from(&other);
        assert_eq!(
            open_base(&other, &other_pk, &enc, b"info", b"aad", &ct),
            Err(HpkeError::Open)
        );
        assert_eq!(
            open_base(&sk_r, &pk_r, &enc, b"other", b"aad", &ct),
            Err(HpkeError::Open)
        );
        assert_eq!(open_base(&sk_r, &pk_r, &enc, b"info", b"", &ct), Err(HpkeError::Open));
        // The public key is part of the KEM context: a wrong one does not
        // open either, so a caller cannot pass a mismatched pair unnoticed.
        assert_eq!(
            open_base(&sk_r, &other_pk, &enc, b"info", b"aad", &ct),
            Err(HpkeError::Open)
        );
    }

    #[test]
    fn all_zero_dh_is_refused_both_ways() {
        // The identity (u = 0) and u = 1 are small-order points: the DH
        // output is all zero whatever the secret.
        let sk = StaticSecret::from([5u8; 32]);
        for low_order in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            assert_eq!(
                decap(&low_order, &sk, &PublicKey::from(&sk)).unwrap_err(),
                HpkeError::Open
            );
            assert_eq!(
                encap_with(&sk, &PublicKey::from(low_order)).unwrap_err(),
                HpkeError::InvalidRecipientKey
            );
        }
    }
}
