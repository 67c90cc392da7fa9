//! The message a client signs (PROTOCOL §2).
//!
//! > A UTF-8 JSON object with exactly these members (unknown or duplicate
//! > members are invalid): `v` (integer `1`), `sender` (64 hex chars: the
//! > client's Ed25519 public key), `node` (64 hex chars: the node's Ed25519
//! > public key), `nonce` (32 hex chars: 16 random bytes, unique per sender),
//! > `ts` (integer, client clock, Unix ms), `topic` (1–64 chars of
//! > `[a-z0-9._/-]`), `body` (any JSON value).
//! >
//! > `message_bytes` are the exact bytes the client serialized; nobody
//! > re-serializes them.
//! >
//! > `sig = Ed25519-Sign(sender_sk, "sealchain/message/v1" || 0x00 || message_bytes)`
//! > … strict verification. `signed_message = sig || message_bytes`.
//!
//! [`Message::parse`] enforces every rule on the exact bytes and names the
//! member at fault; it never re-serializes. [`MessageBuilder`] is the client
//! side: it fills `nonce` from the OS random number generator and `ts` from
//! the clock, and writes the members in the order of the table above.

use std::fmt;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::hexbytes::{HexError, decode_hex};

/// Domain tag of message signatures: `"sealchain/message/v1" || 0x00`.
pub const MESSAGE_SIGNATURE_DOMAIN: &[u8] = b"sealchain/message/v1\0";
/// Length of an Ed25519 signature, the prefix of `signed_message`.
pub const SIGNATURE_LEN: usize = 64;
/// Default (and suggested) limit on `message_bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Longest topic, in characters.
pub const MAX_TOPIC_LEN: usize = 64;
/// The only message version.
pub const MESSAGE_VERSION: u64 = 1;
/// Deepest nesting of arrays and objects `body` may have, so that every
/// auditor's JSON parser reads every stored message without special setup
/// (serde_json's default stops at 128 levels for the whole message, Go's
/// at 10,000); 100 leaves a margin.
pub const MAX_BODY_DEPTH: usize = 100;

const MEMBERS: [&str; 7] = ["v", "sender", "node", "nonce", "ts", "topic", "body"];

/// A message that passed every schema rule of §2.
#[derive(Debug, Clone)]
pub struct Message {
    /// The sender's Ed25519 public key (not yet known to be a valid point).
    pub sender: [u8; 32],
    /// The node's Ed25519 public key the message is bound to.
    pub node: [u8; 32],
    /// 16 random bytes, unique per sender.
    pub nonce: [u8; 16],
    /// The client's clock, Unix ms.
    pub ts: i64,
    /// `[a-z0-9._/-]{1,64}`.
    pub topic: String,
    /// The application content, as the exact JSON text the client wrote.
    pub body: Box<RawValue>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.sender == other.sender
            && self.node == other.node
            && self.nonce == other.nonce
            && self.ts == other.ts
            && self.topic == other.topic
            && self.body.get() == other.body.get()
    }
}

/// Why bytes are not a valid message. The text names the member at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// `message_bytes` exceed the node's limit.
    #[error("message is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Length of `message_bytes`.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The plaintext cannot hold a signature and a message.
    #[error("signed message is {0} bytes; it must be a 64-byte signature followed by the message")]
    TooShort(usize),
    /// `message_bytes` are not UTF-8.
    #[error("message is not valid UTF-8")]
    NotUtf8,
    /// Not a single JSON object.
    #[error("message is not a JSON object: {0}")]
    NotJsonObject(String),
    /// A member the schema does not have.
    #[error("unknown member `{0}`")]
    UnknownMember(String),
    /// A member that appears twice.
    #[error("duplicate member `{0}`")]
    DuplicateMember(&'static str),
    /// A required member is absent.
    #[error("missing member `{0}`")]
    MissingMember(&'static str),
    /// A member whose value breaks its rule.
    #[error("member `{member}`: {reason}")]
    InvalidMember {
        /// The member.
        member: &'static str,
        /// The rule it breaks.
        reason: String,
    },
}

impl MessageError {
    /// The member at fault, when the error concerns one.
    pub fn member(&self) -> Option<&str> {
        match self {
            Self::UnknownMember(m) => Some(m),
            Self::DuplicateMember(m) | Self::MissingMember(m) => Some(m),
            Self::InvalidMember { member, .. } => Some(member),
            _ => None,
        }
    }
}

fn invalid(member: &'static str, reason: impl Into<String>) -> MessageError {
    MessageError::InvalidMember {
        member,
        reason: reason.into(),
    }
}

/// The members of a JSON object in document order, duplicates kept, values
/// unparsed. Deserializing into a struct would silently keep one of two
/// duplicates; this keeps both so the schema can refuse them.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MembersVisitor<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(MEMBERS.len());
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor(std::marker::PhantomData))
    }
}

/// PROTOCOL §2: the values of `sender`, `node`, `nonce` and `topic` are
/// written literally, so each has exactly one spelling.
fn literal(member: &'static str, raw: &RawValue) -> Result<(), MessageError> {
    if raw.get().contains('\\') {
        return Err(invalid(
            member,
            "must be written literally: a JSON escape (\\u…, \\/, …) is not allowed here",
        ));
    }
    Ok(())
}

/// PROTOCOL §2: strings in `body` may use JSON escapes, but a UTF-16
/// surrogate escape must be half of a pair (`\ud83d\ude00`); a lone one
/// (`\udc00`, or `\ud800` not followed by a low surrogate) names no
/// character. `text` is valid JSON, so backslashes only occur in strings.
fn check_surrogates(text: &str) -> Result<(), MessageError> {
    let b = text.as_bytes();
    let code_unit = |at: usize| -> Option<u16> {
        let hex = b.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        if b.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let unit = code_unit(i + 2).unwrap_or(0);
        match unit {
            0xD800..=0xDBFF => {
                let low = (b.get(i + 6..i + 8) == Some(b"\\u"))
                    .then(|| code_unit(i + 8))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Err(invalid(
                        "body",
                        format!("\\u{unit:04x} at byte {i} is a high surrogate without its low half"),
                    ));
                }
                i += 12;
            }
            0xDC00..=0xDFFF => {
                return Err(invalid(
                    "body",
                    format!("\\u{unit:04x} at byte {i} is a lone low surrogate"),
                ));
            }
            _ => i += 6,
        }
    }
    Ok(())
}

/// The bytes of JSON `text` that are not inside a string (with their
/// offsets): the structure and the literals (numbers, `true`, …). The
/// quotes themselves are left out. `text` is valid JSON.
fn outside_strings(text: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    text.bytes().enumerate().filter(move |&(_, b)| {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            false
        } else {
            in_string = b == b'"';
            !in_string
        }
    })
}

/// Refuses a `body` nested deeper than [`MAX_BODY_DEPTH`]; counted without
/// recursion, so no depth can exhaust the stack. `text` is valid JSON.
fn check_depth(text: &str) -> Result<(), MessageError> {
    let mut depth = 0usize;
    for (_, b) in outside_strings(text) {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_BODY_DEPTH {
                    return Err(invalid(
                        "body",
                        format!("nests arrays and objects deeper than {MAX_BODY_DEPTH}"),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a number in `body` beyond the range of an IEEE 754 double
/// (`1e400`): JSON's grammar allows it, but most parsers (serde_json,
/// JavaScript's `JSON.parse` reads it as `Infinity`) cannot represent it,
/// and an auditor must read every stored message (I-JSON, RFC 7493 §2.2).
/// Integers beyond 2^53 stay allowed: ordinary parsers read them. `text`
/// is valid JSON.
fn check_numbers(text: &str) -> Result<(), MessageError> {
    let bytes = text.as_bytes();
    let mut next = 0;
    for (start, b) in outside_strings(text) {
        if start < next || !(b == b'-' || b.is_ascii_digit()) {
            continue;
        }
        next = start
            + bytes[start..]
                .iter()
                .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
        let number = &text[start..next];
        // Without an exponent, 300 digits are far below f64::MAX (about
        // 1.8e308): only longer or exponent forms can overflow.
        let may_overflow = number.len() > 300 || number.contains(['e', 'E']);
        if may_overflow && !number.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(invalid(
                "body",
                format!("the number at byte {start} is beyond the range of a double (IEEE 754 binary64)"),
            ));
        }
    }
    Ok(())
}

fn hex_member<const N: usize>(member: &'static str, raw: &RawValue) -> Result<[u8; N], MessageError> {
    literal(member, raw)?;
    let s: String = serde_json::from_str(raw.get()).map_err(|_| invalid(member, "must be a string"))?;
    decode_hex::<N>(&s).map_err(|e| match e {
        HexError::Length { expected, found } => invalid(
            member,
            format!("must be {expected} lowercase hex characters, got {found}"),
        ),
        HexError::NotLowercaseHex => invalid(member, "must be lowercase hex (0-9a-f)"),
    })
}

/// Checks the topic rule: 1–64 characters of `[a-z0-9._/-]`.
pub fn check_topic(topic: &str) -> Result<(), MessageError> {
    if let Some(c) = topic
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '/' | '-'))
    {
        return Err(invalid("topic", format!("character {c:?} is not one of [a-z0-9._/-]")));
    }
    // Only ASCII is left, so bytes are characters.
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(invalid(
            "topic",
            format!("must be 1 to {MAX_TOPIC_LEN} characters, got {}", topic.len()),
        ));
    }
    Ok(())
}

impl Message {
    /// Validates `message_bytes` against every rule of §2.
    ///
    /// `max_len` is the node's limit on `message_bytes` (16 KiB by default).
    pub fn parse(message_bytes: &[u8], max_len: usize) -> Result<Self, MessageError> {
        if message_bytes.len() > max_len {
            return Err(MessageError::TooLarge {
                len: message_bytes.len(),
                limit: max_len,
            });
        }
        let text = std::str::from_utf8(message_bytes).map_err(|_| MessageError::NotUtf8)?;
        let Members(members) = serde_json::from_str(text).map_err(|e| {
            // serde_json's text is about syntax and positions; it carries no
            // part of the input beyond a line and column.
            MessageError::NotJsonObject(e.to_string())
        })?;

        let mut seen = [None::<&RawValue>; MEMBERS.len()];
        for (key, value) in members {
            let Some(slot) = MEMBERS.iter().position(|m| *m == key) else {
                return Err(MessageError::UnknownMember(key));
            };
            if seen[slot].replace(value).is_some() {
                return Err(MessageError::DuplicateMember(MEMBERS[slot]));
            }
        }
        let get = |i: usize| seen[i].ok_or(MessageError::MissingMember(MEMBERS[i]));
        let [v, sender, node, nonce, ts, topic, body] = [0, 1, 2, 3, 4, 5, 6].map(get);

        match serde_json::from_str::<u64>(v?.get()) {
            Ok(MESSAGE_VERSION) => {}
            _ => return Err(invalid("v", "must be the integer 1")),
        }
        let sender = hex_member::<32>("sender", sender?)?;
        let node = hex_member::<32>("node", node?)?;
        let nonce = hex_member::<16>("nonce", nonce?)?;
        let ts = serde_json::from_str::<i64>(ts?.get())
            .map_err(|_| invalid("ts", "must be an integer (Unix milliseconds)"))?;
        let topic = topic?;
        let topic_text: String = serde_json::from_str(topic.get()).map_err(|_| invalid("topic", "must be a string"))?;
        literal("topic", topic)?;
        check_topic(&topic_text)?;
        let topic = topic_text;
        let body = body?;
        check_depth(body.get())?;
        check_surrogates(body.get())?;
        check_numbers(body.get())?;
        let body = body.to_owned();

        Ok(Self {
            sender,
            node,
            nonce,
            ts,
            topic,
            body,
        })
    }
}

/// The bytes an Ed25519 message signature covers.
pub fn signing_input(message_bytes: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(MESSAGE_SIGNATURE_DOMAIN.len() + message_bytes.len());
    input.extend_from_slice(MESSAGE_SIGNATURE_DOMAIN);
    input.extend_from_slice(message_bytes);
    input
}

/// `Ed25519-Sign(sender_sk, "sealchain/message/v1" || 0x00 || message_bytes)`.
pub fn sign(key: &SigningKey, message_bytes: &[u8]) -> Signature {
    crate::sign_tagged(key, &signing_input(message_bytes))
}

/// Why a message signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `sender` is not a valid Ed25519 public key encoding.
    #[error("sender is not a valid Ed25519 public key")]
    BadSenderKey,
    /// The signature does not verify (strictly) under `sender`.
    #[error("signature does not verify under sender")]
    Invalid,
}

/// Strict verification (`verify_strict`, as [`crate::strict`] computes
/// it): non-canonical and small-order encodings are refused.
pub fn verify(sender: &[u8; 32], message_bytes: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(sender).map_err(|_| SignatureError::BadSenderKey)?;
    verify_under(&key, message_bytes, signature)
}

/// Strict verification under a decoded sender key.
fn verify_under(
    key: &VerifyingKey,
    message_bytes: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), SignatureError> {
    if crate::strict::verify(key, &[MESSAGE_SIGNATURE_DOMAIN, message_bytes], signature) {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// Keys decoded per thread by [`verify_cached`] before it forgets them all.
const SENDER_KEYS_PER_THREAD: usize = 4096;

thread_local! {
    static SENDER_KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerifyingKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// [`verify`], with the sender's decoded key kept for the next message of
/// the same sender on this thread.
///
/// Decoding a key is a point decompression (a field square root), about a
/// tenth of a strict verification, and a chain holds many messages of each
/// sender. Decoding is a function of the 32 bytes, so the answer is exactly
/// [`verify`]'s: a key that does not decode is not kept, and is refused
/// again each time. At most 4,096 keys per thread: a thread that meets more
/// forgets them all and starts over.
pub fn verify_cached(
    sender: &[u8; 32],
    message_bytes: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), SignatureError> {
    let key = SENDER_KEYS.with_borrow_mut(|keys| {
        if let Some(key) = keys.get(sender) {
            return Ok(*key);
        }
        let key = VerifyingKey::from_bytes(sender).map_err(|_| SignatureError::BadSenderKey)?;
        if keys.len() >= SENDER_KEYS_PER_THREAD {
            keys.clear();
        }
        keys.insert(*sender, key);
        Ok(key)
    })?;
    verify_under(&key, message_bytes, signature)
}

/// `signed_message = sig || message_bytes`, split but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    /// The 64-byte Ed25519 signature.
    pub signature: [u8; SIGNATURE_LEN],
    /// The exact bytes the client serialized.
    pub message_bytes: Vec<u8>,
}

impl SignedMessage {
    /// Splits a plaintext into signature and message. Fails if the plaintext
    /// is shorter than 65 bytes (no room for a message).
    pub fn from_bytes(plaintext: &[u8]) -> Result<Self, MessageError> {
        if plaintext.len() <= SIGNATURE_LEN {
            return Err(MessageError::TooShort(plaintext.len()));
        }
        let (sig, msg) = plaintext.split_at(SIGNATURE_LEN);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(sig);
        Ok(Self {
            signature,
            message_bytes: msg.to_vec(),
        })
    }

    /// `sig || message_bytes`: the HPKE plaintext and the Merkle leaf data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNATURE_LEN + self.message_bytes.len());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.message_bytes);
        out
    }

    /// Its RFC 6962 leaf hash.
    pub fn leaf_hash(&self) -> crate::Hash {
        crate::merkle::leaf_hash_parts(&self.signature, &self.message_bytes)
    }
}

/// Builds and signs messages on the client side.
///
/// ```
/// # use sealchain_shared::message::MessageBuilder;
/// # use sealchain_shared::keys::generate_signing_key;
/// let client = generate_signing_key().unwrap();
/// let node = generate_signing_key().unwrap().verifying_key();
/// let body = serde_json::json!({"reading": 21.5, "unit": "C"});
/// let signed = MessageBuilder::new(node.to_bytes(), "sensors/temp", &body)
///     .unwrap()
///     .sign(&client)
///     .unwrap();
/// assert_eq!(&signed.to_bytes()[..64], &signed.signature[..]);
/// ```
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    node: [u8; 32],
    topic: String,
    body: String,
    nonce: Option<[u8; 16]>,
    ts: Option<i64>,
}

impl MessageBuilder {
    /// A message to `node` (its Ed25519 public key) on `topic` carrying `body`.
    pub fn new(node: [u8; 32], topic: &str, body: &serde_json::Value) -> Result<Self, MessageError> {
        check_topic(topic)?;
        Ok(Self {
            node,
            topic: topic.to_owned(),
            body: body.to_string(),
            nonce: None,
            ts: None,
        })
    }

    /// Fixes the nonce (tests and replays); by default it is random.
    pub fn nonce(mut self, nonce: [u8; 16]) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Fixes `ts` (tests); by default it is the current time.
    pub fn ts(mut self, ts: i64) -> Self {
        self.ts = Some(ts);
        self
    }

    /// Serializes the message for `sender` (members in table order, no
    /// whitespace). Fails only if the OS random number generator fails.
    pub fn to_bytes(&self, sender: &VerifyingKey) -> Result<Vec<u8>, getrandom::Error> {
        let nonce = match self.nonce {
            Some(n) => n,
            None => {
                let mut n = [0u8; 16];
                getrandom::fill(&mut n)?;
                n
            }
        };
        let ts = self.ts.unwrap_or_else(crate::now_ms);
        // `topic` passed check_topic, so it needs no JSON escaping; body is
        // the serde_json text of a Value.
        Ok(format!(
            r#"{{"v":1,"sender":"{}","node":"{}","nonce":"{}","ts":{ts},"topic":"{}","body":{}}}"#,
            hex::encode(sender.as_bytes()),
            hex::encode(self.node),
            hex::encode(nonce),
            self.topic,
            self.body
        )
        .into_bytes())
    }

    /// Serializes and signs: the `signed_message` to seal.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedMessage, getrandom::Error> {
        let message_bytes = self.to_bytes(&key.verifying_key())?;
        let signature = sign(key, &message_bytes).to_bytes();
        Ok(SignedMessage {
            signature,
            message_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const N: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

    fn msg(members: &str) -> String {
        format!("{{{members}}}")
    }

    fn good() -> String {
        msg(&format!(
            r#""v":1,"sender":"{S}","node":"{N}","nonce":"000102030405060708090a0b0c0d0e0f","ts":1764000000000,"topic":"sensors/temp","body":{{"reading":21.5,"unit":"C"}}"#
        ))
    }

    fn parse(s: &str) -> Result<Message, MessageError> {
        Message::parse(s.as_bytes(), DEFAULT_MAX_MESSAGE_BYTES)
    }

    fn faulty_member(result: Result<Message, MessageError>) -> String {
        result.map(drop).unwrap_err().member().unwrap_or("").to_owned()
    }

    #[test]
    fn escapes_in_the_literal_members_are_refused() {
        let g = good();
        // "d" escaped as \u0064 in sender; "\/" in topic; an escaped digit
        // in node and nonce.
        let sender = g.replacen(&format!("\"{S}\""), &format!("\"\\u0064{}\"", &S[1..]), 1);
        assert!(parse(&sender).is_err());
        assert_eq!(faulty_member(parse(&sender)), "sender");
        let node = g.replacen(&format!("\"{N}\""), &format!("\"\\u0033{}\"", &N[1..]), 1);
        assert_eq!(faulty_member(parse(&node)), "node");
        let nonce = g.replacen("\"000102", "\"\\u0030\\u003002", 1);
        assert_eq!(faulty_member(parse(&nonce)), "nonce");
        let topic = g.replacen("sensors/temp", "sensors\\/temp", 1);
        let err = parse(&topic).map(drop).unwrap_err();
        assert_eq!(err.member(), Some("topic"));
        assert!(err.to_string().contains("literally"), "{err}");
        // The unescaped spelling of each is fine.
        parse(&g).unwrap();
    }

    #[test]
    fn body_depth_is_limited_without_recursion() {
        let with_body = |body: &str| good().replacen(r#"{"reading":21.5,"unit":"C"}"#, body, 1);
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        parse(&with_body(&nested(MAX_BODY_DEPTH))).unwrap();
        let err = parse(&with_body(&nested(MAX_BODY_DEPTH + 1))).map(drop).unwrap_err();
        assert_eq!(err.member(), Some("body"), "{err}");
        // Brackets inside strings do not count; objects do.
        parse(&with_body(&format!("\"{}\"", "[".repeat(1000)))).unwrap();
        parse(&with_body(&format!("[\"\\\"[[[\",{}]", nested(MAX_BODY_DEPTH - 1)))).unwrap();
        let objects = format!(
            "{}1{}",
            r#"{"a":"#.repeat(MAX_BODY_DEPTH + 1),
            "}".repeat(MAX_BODY_DEPTH + 1)
        );
        assert!(parse(&with_body(&objects)).is_err());
        // Far deeper than any stack: refused, not crashed.
        let huge = Message::parse(with_body(&nested(100_000)).as_bytes(), usize::MAX)
            .map(drop)
            .unwrap_err();
        assert_eq!(huge.member(), Some("body"));
    }

    #[test]
    fn body_numbers_beyond_a_double_are_refused() {
        let with_body = |body: &str| good().replacen(r#"{"reading":21.5,"unit":"C"}"#, body, 1);
        for bad in ["1e400", "-1e309", "[0, 2.5E+999]", r#"{"a":{"b":1e1000}}"#] {
            let err = parse(&with_body(bad)).map(drop).unwrap_err();
            assert_eq!(err.member(), Some("body"), "{bad}: {err}");
            assert!(err.to_string().contains("double"), "{bad}: {err}");
        }
        let long = format!("1{}", "0".repeat(400));
        assert!(parse(&with_body(&long)).is_err(), "400 digits overflow a double");
        for fine in [
            "1e308",
            "-1.7976931348623157e308",
            "1e-400",
            "18446744073709551616",
            "123456789012345678901234567890",
            r#""1e400 as text""#,
            r#"["\"1e999", 0.5]"#,
        ] {
            parse(&with_body(fine)).unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
    }

    #[test]
    fn lone_surrogates_in_body_are_refused_and_pairs_accepted() {
        let with_body = |body: &str| good().replacen(r#"{"reading":21.5,"unit":"C"}"#, body, 1);
        for bad in [
            r#""\udc00""#,
            r#""\ud800""#,
            r#""x\ud800y""#,
            r#""\ud800\u0041""#,
            r#"{"k":["\uDFFF"]}"#,
            r#"{"\ud83d":1}"#,
            r#""\ud83d\ud83d""#,
        ] {
            let err = parse(&with_body(bad)).map(drop).unwrap_err();
            assert_eq!(err.member(), Some("body"), "{bad}: {err}");
            assert!(err.to_string().contains("surrogate"), "{bad}: {err}");
        }
        for good_body in [
            r#""\ud83d\ude00""#,
            r#""\uD83D\uDE00 and \u00e9, \\ud800 as text, \"q\"""#,
            r#"{"a\nb":"\t"}"#,
            r#""😀""#,
        ] {
            parse(&with_body(good_body)).unwrap_or_else(|e| panic!("{good_body}: {e}"));
        }
    }

    #[test]
    fn accepts_the_example() {
        let m = parse(&good()).unwrap();
        assert_eq!(m.topic, "sensors/temp");
        assert_eq!(m.ts, 1_764_000_000_000);
        assert_eq!(m.body.get(), r#"{"reading":21.5,"unit":"C"}"#);
        assert_eq!(hex::encode(m.sender), S);
    }

    #[test]
    fn member_order_and_whitespace_are_free() {
        let s = format!(
            r#" {{ "body" : [1, 2] , "topic":"a", "ts":0, "nonce":"000102030405060708090a0b0c0d0e0f", "node":"{N}", "sender":"{S}", "v":1 }} "#
        );
        assert!(parse(&s).is_ok());
    }

    fn member_of(s: &str) -> Option<String> {
        parse(s).unwrap_err().member().map(str::to_owned)
    }

    #[test]
    fn each_rule_names_its_member() {
        let g = good();
        let cases: Vec<(String, &str)> = vec![
            (g.replace(r#""v":1"#, r#""v":2"#), "v"),
            (g.replace(r#""v":1"#, r#""v":1.0"#), "v"),
            (g.replace(r#""v":1"#, r#""v":"1""#), "v"),
            (g.replace(S, &S.to_uppercase()), "sender"),
            (g.replace(S, &S[..62]), "sender"),
            (g.replace(N, "zz"), "node"),
            (g.replace("000102030405060708090a0b0c0d0e0f", "0001"), "nonce"),
            (g.replace("1764000000000", "\"1764000000000\""), "ts"),
            (g.replace("1764000000000", "1.5"), "ts"),
            (g.replace("1764000000000", "99999999999999999999"), "ts"),
            (g.replace("sensors/temp", "Sensors"), "topic"),
            (g.replace("sensors/temp", ""), "topic"),
            (g.replace("sensors/temp", &"a".repeat(65)), "topic"),
            (g.replace("sensors/temp", "caf\u{e9}"), "topic"),
            (g.replace(r#""v":1,"#, ""), "v"),
            (g.replace(r#""v":1,"#, r#""v":1,"v":1,"#), "v"),
            (g.replace(r#""v":1,"#, r#""v":1,"extra":true,"#), "extra"),
        ];
        for (input, member) in cases {
            assert_eq!(member_of(&input).as_deref(), Some(member), "input: {input}");
        }
    }

    #[test]
    fn topic_accepts_the_whole_charset_and_64_chars() {
        let g = good();
        assert!(parse(&g.replace("sensors/temp", "az09._/-")).is_ok());
        assert!(parse(&g.replace("sensors/temp", &"a".repeat(64))).is_ok());
    }

    #[test]
    fn refuses_non_objects_non_utf8_and_oversize() {
        assert!(matches!(parse("[]"), Err(MessageError::NotJsonObject(_))));
        assert!(matches!(parse("{} x"), Err(MessageError::NotJsonObject(_))));
        assert!(matches!(parse(""), Err(MessageError::NotJsonObject(_))));
        assert_eq!(Message::parse(b"{\xff}", 100), Err(MessageError::NotUtf8));
        let g = good();
        assert_eq!(
            Message::parse(g.as_bytes(), g.len() - 1),
            Err(MessageError::TooLarge {
                len: g.len(),
                limit: g.len() - 1
            })
        );
        assert!(Message::parse(g.as_bytes(), g.len()).is_ok());
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let node = SigningKey::from_bytes(&[8; 32]).verifying_key();
        let signed = MessageBuilder::new(node.to_bytes(), "t", &serde_json::json!({"a": 1}))
            .unwrap()
            .sign(&key)
            .unwrap();
        let parsed = Message::parse(&signed.message_bytes, DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(parsed.sender, key.verifying_key().to_bytes());
        assert_eq!(parsed.node, node.to_bytes());
        verify(&parsed.sender, &signed.message_bytes, &signed.signature).unwrap();

        let mut bytes = signed.message_bytes.clone();
        bytes[10] ^= 1;
        assert_eq!(
            verify(&parsed.sender, &bytes, &signed.signature),
            Err(SignatureError::Invalid)
        );
        let mut sig = signed.signature;
        sig[0] ^= 1;
        assert_eq!(
            verify(&parsed.sender, &signed.message_bytes, &sig),
            Err(SignatureError::Invalid)
        );
        // A signature over the bare message, without the domain tag, fails.
        use ed25519_dalek::Signer;
        let untagged = key.sign(&signed.message_bytes).to_bytes();
        assert_eq!(
            verify(&parsed.sender, &signed.message_bytes, &untagged),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn builder_refuses_bad_topics() {
        assert_eq!(
            MessageBuilder::new([0; 32], "BAD", &serde_json::Value::Null)
                .unwrap_err()
                .member(),
            Some("topic")
        );
    }

    #[test]
    fn signed_message_needs_65_bytes() {
        assert_eq!(SignedMessage::from_bytes(&[0; 64]), Err(MessageError::TooShort(64)));
        let sm = SignedMessage::from_bytes(&[1; 65]).unwrap();
        assert_eq!(sm.message_bytes, vec![1]);
        assert_eq!(sm.to_bytes(), vec![1; 65]);
    }
}
