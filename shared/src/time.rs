use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as Unix milliseconds, the protocol's clock unit.
///
/// A clock set before 1970 gives a negative value rather than a panic.
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}
