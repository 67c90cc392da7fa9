//! How the explorer writes values for people: times, short hashes, JSON
//! bodies. Display only: the page's script checks the raw values it fetches
//! from the JSON API, never these.

use sealchain_shared::message::Message;

use crate::db::models::MessageRow;

/// Unix milliseconds as `2026-11-24 12:00:00.123 UTC`.
pub(crate) fn utc(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        Err(_) => format!("{ms} ms (out of range)"),
    }
}

/// Unix milliseconds as an RFC 3339 instant, for `<time datetime>`.
pub(crate) fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// A duration in words: `45 s`, `3 min`, `2 h 5 min`, `4 days`.
pub(crate) fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} days", s / 86_400),
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first 8 and last 6 hex digits: `a1b2c3d4…e5f6a7`.
pub(crate) fn short(hex: &str) -> String {
    if hex.len() <= 16 {
        return hex.to_owned();
    }
    format!("{}…{}", &hex[..8], &hex[hex.len() - 6..])
}

/// JSON text (a message `body`, which the schema check has parsed)
/// indented for reading, every token as written: numbers, key order and
/// escapes are kept, only whitespace changes.
pub(crate) fn pretty_json(raw: &str) -> String {
    jsonxf::pretty_print(raw).unwrap_or_else(|_| raw.to_owned())
}

/// A stored message as the pages show it.
#[derive(Debug, Clone)]
pub(crate) struct MessageView {
    /// Its seq.
    pub(crate) seq: i64,
    /// Sender key, hex.
    pub(crate) sender: String,
    /// Leaf hash, hex.
    pub(crate) leaf_hash: String,
    /// The sender's signature, hex.
    pub(crate) signature: String,
    /// When the node stored it.
    pub(crate) received_at: i64,
    /// The message as parsed, or why it does not parse (bytes changed in
    /// the database behind the node's back).
    pub(crate) parsed: Result<Parsed, String>,
    /// `message_bytes` as text.
    pub(crate) raw: String,
}

/// The members of a message that parsed.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// `topic`.
    pub(crate) topic: String,
    /// `ts`, the client's clock.
    pub(crate) ts: i64,
    /// `nonce`, hex.
    pub(crate) nonce: String,
    /// `node`, hex.
    pub(crate) node: String,
    /// `body`, pretty-printed.
    pub(crate) body: String,
}

impl MessageView {
    /// Reads a stored row. The schema rules are checked again: a row
    /// changed in the database may not be a message any more.
    pub(crate) fn from_row(row: &MessageRow) -> Self {
        let parsed = Message::parse(&row.message, usize::MAX)
            .map(|m| Parsed {
                topic: m.topic,
                ts: m.ts,
                nonce: hex::encode(m.nonce),
                node: hex::encode(m.node),
                body: pretty_json(m.body.get()),
            })
            .map_err(|e| e.to_string());
        Self {
            seq: row.seq,
            sender: hex::encode(&row.sender),
            leaf_hash: hex::encode(&row.leaf_hash),
            signature: hex::encode(&row.signature),
            received_at: row.received_at,
            parsed,
            raw: String::from_utf8_lossy(&row.message).into_owned(),
        }
    }

    /// The topic, or a dash when the message does not parse.
    pub(crate) fn topic(&self) -> &str {
        self.parsed.as_ref().map_or("—", |p| p.topic.as_str())
    }

    /// `received_at` for people.
    pub(crate) fn received(&self) -> String {
        utc(self.received_at)
    }

    /// `received_at` for `<time datetime>`.
    pub(crate) fn received_iso(&self) -> String {
        iso(self.received_at)
    }

    /// The sender key, shortened.
    pub(crate) fn sender_short(&self) -> String {
        short(&self.sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_numbers_read_well() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(1_764_000_000_123), "2025-11-24 16:00:00.123 UTC");
        assert_eq!(iso(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
        assert!(utc(i64::MAX).contains("out of range"));
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(age(59_999), "59 s");
        assert_eq!(age(3_600_000 + 5 * 60_000), "1 h 5 min");
        assert_eq!(short(&"ab".repeat(32)), "abababab…ababab");
    }

    #[test]
    fn pretty_json_keeps_every_token() {
        let raw = r#"{"z":21.50,"a":[1e3,"\u00e9\n"],"big":123456789012345678901234567890}"#;
        let pretty = pretty_json(raw);
        assert_eq!(
            pretty,
            "{\n  \"z\": 21.50,\n  \"a\": [\n    1e3,\n    \"\\u00e9\\n\"\n  ],\n  \"big\": 123456789012345678901234567890\n}"
        );
        // Only whitespace was added (the strings here hold none).
        assert_eq!(pretty.split_whitespace().collect::<String>(), raw);
    }
}
