//! Fixed-length byte strings written as lowercase hex (PROTOCOL notation:
//! "Hex is lowercase").
//!
//! Parsing is strict: the exact number of characters, lowercase only. Two
//! spellings of the same bytes would let one value have two encodings, which
//! an auditor comparing strings could trip over.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `N` bytes that travel as `2N` lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HexBytes<const N: usize>(pub [u8; N]);

/// Why a hex string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string does not have `2N` characters.
    #[error("expected {expected} hex characters, got {found}")]
    Length {
        /// Required length in characters.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// A character is not one of `0-9a-f`.
    #[error("expected lowercase hex (0-9a-f)")]
    NotLowercaseHex,
}

/// Decodes exactly `N` bytes from `2N` lowercase hex characters.
pub fn decode_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    if s.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            found: s.len(),
        });
    }
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(HexError::NotLowercaseHex);
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| HexError::NotLowercaseHex)?;
    Ok(out)
}

impl<const N: usize> HexBytes<N> {
    /// The lowercase hex spelling.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl<const N: usize> From<[u8; N]> for HexBytes<N> {
    fn from(bytes: [u8; N]) -> Self {
        Self(bytes)
    }
}

impl<const N: usize> AsRef<[u8]> for HexBytes<N> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> FromStr for HexBytes<N> {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex(s).map(Self)
    }
}

impl<const N: usize> fmt::Display for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl<const N: usize> fmt::Debug for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexBytes({})", self.to_hex())
    }
}

impl<const N: usize> Serialize for HexBytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de, const N: usize> Deserialize<'de> for HexBytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
mod openapi {
    use super::HexBytes;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

    impl<const N: usize> utoipa::PartialSchema for HexBytes<N> {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(format!("{N} bytes as {} lowercase hex characters", 2 * N)))
                .pattern(Some(format!("^[0-9a-f]{{{}}}$", 2 * N)))
                .into()
        }
    }

    impl<const N: usize> utoipa::ToSchema for HexBytes<N> {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_lowercase() {
        let h: HexBytes<2> = "00ff".parse().unwrap();
        assert_eq!(h.0, [0x00, 0xff]);
        assert_eq!(h.to_string(), "00ff");
    }

    #[test]
    fn refuses_uppercase_wrong_length_and_junk() {
        assert_eq!(decode_hex::<2>("00FF"), Err(HexError::NotLowercaseHex));
        assert_eq!(decode_hex::<2>("00f"), Err(HexError::Length { expected: 4, found: 3 }));
        assert_eq!(decode_hex::<2>("00fg"), Err(HexError::NotLowercaseHex));
        // Multi-byte UTF-8 of the right byte length must not panic.
        assert_eq!(decode_hex::<1>("é"), Err(HexError::NotLowercaseHex));
    }

    #[test]
    fn serde_uses_strings() {
        let h = HexBytes([1u8, 2]);
        assert_eq!(serde_json::to_string(&h).unwrap(), "\"0102\"");
        let back: HexBytes<2> = serde_json::from_str("\"0102\"").unwrap();
        assert_eq!(back, h);
        assert!(serde_json::from_str::<HexBytes<2>>("\"0G02\"").is_err());
    }
}
