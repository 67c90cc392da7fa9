//! RFC 9180 (HPKE) conformance of the envelope (PROTOCOL §3).
//!
//! - Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//!   ChaCha20Poly1305, base mode. The values are retyped from the RFC (the
//!   test never reads a vector file).
//! - Interoperability with the independent `hpke` crate for the protocol's
//!   suite, `info = "sealchain/envelope/v1"` and empty `aad`, in both
//!   directions: what §3 promises to "any conforming HPKE library".

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sealchain_shared::envelope::{ENVELOPE_INFO, Envelope};
use sealchain_shared::hpke::{self as ours, Context, HpkeError};
use sealchain_shared::keys::EncryptionKey;
use x25519_dalek::{PublicKey, StaticSecret};

/// RFC 9180 A.2.1 values (hex, as printed in the RFC).
mod a2_1 {
    /// "Ode on a Grecian Urn"
    pub(super) const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
    pub(super) const PK_EM: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
    pub(super) const SK_EM: &str = "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600";
    pub(super) const PK_RM: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
    pub(super) const SK_RM: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
    pub(super) const ENC: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
    pub(super) const SHARED_SECRET: &str = "0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7";
    pub(super) const KEY: &str = "ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91";
    pub(super) const BASE_NONCE: &str = "5c4d98150661b848853b547f";
    /// Encryption sequence number 0.
    /// "Beauty is truth, truth beauty"
    pub(super) const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
    /// "Count-0"
    pub(super) const AAD_0: &str = "436f756e742d30";
    pub(super) const NONCE_0: &str = "5c4d98150661b848853b547f";
    pub(super) const CT_0: &str =
        "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28";
}

fn bytes(hex_str: &str) -> Vec<u8> {
    hex::decode(hex_str).unwrap()
}

fn array32(hex_str: &str) -> [u8; 32] {
    bytes(hex_str).try_into().unwrap()
}

fn sk_e() -> StaticSecret {
    StaticSecret::from(array32(a2_1::SK_EM))
}

fn sk_r() -> StaticSecret {
    StaticSecret::from(array32(a2_1::SK_RM))
}

fn pk_r() -> PublicKey {
    PublicKey::from(array32(a2_1::PK_RM))
}

#[test]
fn rfc9180_a2_1_vector_constants_are_the_rfc_text() {
    // Guards against a typo in the retyped hex of the ASCII inputs.
    assert_eq!(bytes(a2_1::INFO), b"Ode on a Grecian Urn");
    assert_eq!(bytes(a2_1::PT), b"Beauty is truth, truth beauty");
    assert_eq!(bytes(a2_1::AAD_0), b"Count-0");
    // The key pairs are consistent: pk = X25519(sk, 9).
    assert_eq!(PublicKey::from(&sk_e()).to_bytes(), array32(a2_1::PK_EM));
    assert_eq!(PublicKey::from(&sk_r()).to_bytes(), array32(a2_1::PK_RM));
}

#[test]
fn rfc9180_a2_1_shared_secret() {
    let (shared, enc) = ours::encap_with(&sk_e(), &pk_r()).unwrap();
    assert_eq!(hex::encode(shared.as_bytes()), a2_1::SHARED_SECRET);
    assert_eq!(hex::encode(enc), a2_1::ENC);
    assert_eq!(hex::encode(enc), a2_1::PK_EM);

    let decapped = ours::decap(&array32(a2_1::ENC), &sk_r(), &pk_r()).unwrap();
    assert_eq!(hex::encode(decapped.as_bytes()), a2_1::SHARED_SECRET);
}

#[test]
fn rfc9180_a2_1_key() {
    let (shared, _) = ours::encap_with(&sk_e(), &pk_r()).unwrap();
    let ctx = Context::base(&shared, &bytes(a2_1::INFO));
    assert_eq!(hex::encode(ctx.key()), a2_1::KEY);
}

#[test]
fn rfc9180_a2_1_base_nonce() {
    let shared = ours::decap(&array32(a2_1::ENC), &sk_r(), &pk_r()).unwrap();
    let ctx = Context::base(&shared, &bytes(a2_1::INFO));
    assert_eq!(hex::encode(ctx.base_nonce()), a2_1::BASE_NONCE);
    // Sequence number 0 uses the base nonce itself (RFC 9180 §5.2).
    assert_eq!(a2_1::NONCE_0, a2_1::BASE_NONCE);
}

#[test]
fn rfc9180_a2_1_open_seq0() {
    let pt = ours::open_base(
        &sk_r(),
        &pk_r(),
        &array32(a2_1::ENC),
        &bytes(a2_1::INFO),
        &bytes(a2_1::AAD_0),
        &bytes(a2_1::CT_0),
    )
    .unwrap();
    assert_eq!(&pt[..], &bytes(a2_1::PT)[..]);

    // The same ciphertext under another aad (the vector's seq-1 aad) fails.
    assert_eq!(
        ours::open_base(
            &sk_r(),
            &pk_r(),
            &array32(a2_1::ENC),
            &bytes(a2_1::INFO),
            b"Count-1",
            &bytes(a2_1::CT_0),
        ),
        Err(HpkeError::Open)
    );
}

#[test]
fn rfc9180_a2_1_seal_seq0() {
    let (enc, ct) = ours::seal_base_with(
        &sk_e(),
        &pk_r(),
        &bytes(a2_1::INFO),
        &bytes(a2_1::AAD_0),
        &bytes(a2_1::PT),
    )
    .unwrap();
    assert_eq!(hex::encode(enc), a2_1::ENC);
    assert_eq!(hex::encode(ct), a2_1::CT_0);
}

/// Plaintext sizes for the interop tests: empty, one byte, the smallest
/// `signed_message` (65), a typical one, block and AEAD boundaries, the
/// default message limit plus its signature, and the default body limit.
const SIZES: [usize; 9] = [0, 1, 63, 64, 65, 200, 1024, 16 * 1024 + 64, 64 * 1024];

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

type HpkeKem = X25519HkdfSha256;

#[test]
fn interop_hpke_crate_seals_we_open() {
    let node = EncryptionKey::generate().unwrap();
    let pk = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(node.public_key().as_bytes()).unwrap();
    for len in SIZES {
        let pt = plaintext(len);
        let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, HpkeKem>(
            &OpModeS::Base,
            &pk,
            ENVELOPE_INFO,
            &pt,
            b"",
        )
        .unwrap();
        let envelope = Envelope {
            enc: enc.to_bytes().as_slice().try_into().unwrap(),
            ct,
        };
        // Through the wire form too, as the node receives it.
        let envelope = Envelope::from_json(envelope.to_json().as_bytes()).unwrap();
        assert_eq!(&envelope.open(&node).unwrap()[..], &pt[..], "plaintext of {len} bytes");
    }
}

#[test]
fn interop_we_seal_hpke_crate_opens() {
    // The node key comes from the other library here, so the key
    // conversion is checked as well.
    let (sk, pk) = HpkeKem::gen_keypair();
    let node = EncryptionKey::from_bytes(sk.to_bytes().as_slice().try_into().unwrap());
    assert_eq!(node.public_key().as_bytes(), pk.to_bytes().as_slice());
    for len in SIZES {
        let pt = plaintext(len);
        let envelope = Envelope::seal(&node.public_key(), &pt).unwrap();
        assert_eq!(envelope.ct.len(), len + ours::TAG_LEN);
        let enc = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(&envelope.enc).unwrap();
        let opened = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, HpkeKem>(
            &OpModeR::Base,
            &sk,
            &enc,
            ENVELOPE_INFO,
            &envelope.ct,
            b"",
        )
        .unwrap();
        assert_eq!(opened, pt, "plaintext of {len} bytes");
    }
}

#[test]
fn interop_other_info_or_aad_does_not_open() {
    // An envelope sealed by a conforming library with the wrong `info` or a
    // non-empty `aad` is refused with the one opaque error.
    let node = EncryptionKey::generate().unwrap();
    let pk = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(node.public_key().as_bytes()).unwrap();
    let pt = plaintext(200);
    for (info, aad) in [
        (&b"sealchain/envelope/v2"[..], &b""[..]),
        (&b""[..], &b""[..]),
        (ENVELOPE_INFO, &b"x"[..]),
    ] {
        let (enc, ct) =
            hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, HpkeKem>(&OpModeS::Base, &pk, info, &pt, aad)
                .unwrap();
        let envelope = Envelope {
            enc: enc.to_bytes().as_slice().try_into().unwrap(),
            ct,
        };
        assert_eq!(envelope.open(&node), Err(HpkeError::Open));
    }
}
