//! The message parser (PROTOCOL §2): any bytes either fail, naming a rule,
//! or parse into a message that obeys every rule, the same way twice, and
//! that any ordinary JSON parser reads.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sealchain_shared::message::{Message, SignedMessage, check_topic};

/// Any JSON value, read the way serde_json reads it by default: its
/// strings decoded (a lone surrogate refused), its nesting limited, its
/// numbers within a double. Not `serde_json::Value`: the workspace enables
/// serde_json's `raw_value` feature (the message parser keeps `body` raw),
/// and with it `Value` takes an object member named
/// `$serde_json::private::RawValue` for serde_json's own raw-value token and
/// refuses plain JSON such as `{"$serde_json::private::RawValue":0}`.
#[derive(serde::Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(HashMap<String, Json>),
}

fuzz_target!(|data: &[u8]| {
    let _ = SignedMessage::from_bytes(data);
    match Message::parse(data, usize::MAX) {
        Ok(m) => {
            check_topic(&m.topic).expect("a parsed topic obeys the topic rule");
            // Every accepted message is plain JSON to an ordinary parser:
            // no lone surrogate, not too deep (what auditors rely on).
            serde_json::from_slice::<Json>(data).expect("an accepted message parses as ordinary JSON");
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
