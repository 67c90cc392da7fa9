//! The message parser (PROTOCOL §2): any bytes either fail, naming a rule,
//! or parse into a message that obeys every rule, the same way twice, and
//! that any ordinary JSON parser reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealchain_shared::message::{Message, SignedMessage, check_topic};

fuzz_target!(|data: &[u8]| {
    let _ = SignedMessage::from_bytes(data);
    match Message::parse(data, usize::MAX) {
        Ok(m) => {
            check_topic(&m.topic).expect("a parsed topic obeys the topic rule");
            // Every accepted message is plain JSON to an ordinary parser:
            // no lone surrogate, not too deep (what auditors rely on).
            serde_json::from_slice::<serde_json::Value>(data).expect("an accepted message parses with serde_json's defaults");
            let again = Message::parse(data, usize::MAX).expect("parsing is deterministic");
            assert_eq!(again, m);
            // The literal members are literal.
            let text = std::str::from_utf8(data).expect("a parsed message is UTF-8");
            assert!(text.contains(&hex_of(&m.sender)) && text.contains(&hex_of(&m.nonce)));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
