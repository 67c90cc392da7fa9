//! HPKE open (RFC 9180 base mode, the node's side of §3): arbitrary `enc`
//! and ciphertext never panic and never open (forging a tag is beyond a
//! fuzzer); and any plaintext sealed to the key opens to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealchain_shared::envelope::Envelope;
use sealchain_shared::keys::EncryptionKey;

fuzz_target!(|data: &[u8]| {
    let key = EncryptionKey::from_bytes([7; 32]);
    if data.len() >= 32 {
        let mut enc = [0u8; 32];
        enc.copy_from_slice(&data[..32]);
        let forged = Envelope { enc, ct: data[32..].to_vec() };
        assert!(forged.open(&key).is_err(), "an envelope nobody sealed opened");
    }
    let sealed = Envelope::seal(&key.public_key(), data).expect("seal to a valid key");
    let opened = sealed.open(&key).expect("what was sealed opens");
    assert_eq!(&opened[..], data);
});
