//! The envelope decoder (PROTOCOL §3): any bytes either fail or give an
//! envelope whose canonical JSON decodes to the same envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealchain_shared::envelope::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::from_json(data) {
        let again = Envelope::from_json(envelope.to_json().as_bytes()).expect("canonical JSON decodes");
        assert_eq!(again.enc, envelope.enc);
        assert_eq!(again.ct, envelope.ct);
    }
});
