//! Counting outcomes: latencies in an HDR histogram, failures by code.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::api::ApiError;

/// Latencies in microseconds, 1 µs to 10 minutes, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

/// Quantiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    const MAX_MICROS: u64 = 600_000_000;

    /// An empty histogram.
    pub fn new() -> Self {
        // Bounds are constants that satisfy new_with_bounds' rules
        // (low >= 1, high >= 2 * low, sigfig <= 5), so this cannot fail.
        #[allow(clippy::expect_used)]
        let h = Histogram::new_with_bounds(1, Self::MAX_MICROS, 3).expect("valid histogram bounds");
        Self(h)
    }

    /// Records one latency (clamped to the histogram's range).
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.clamp(1, Self::MAX_MICROS));
    }

    /// Number of recorded latencies.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A quantile in microseconds (0 when empty).
    pub fn quantile_micros(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    /// The largest latency in microseconds (0 when empty).
    pub fn max_micros(&self) -> u64 {
        if self.0.is_empty() { 0 } else { self.0.max() }
    }

    /// p50/p90/p99/max in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySummary {
            p50: ms(self.quantile_micros(0.50)),
            p90: ms(self.quantile_micros(0.90)),
            p99: ms(self.quantile_micros(0.99)),
            max: ms(self.max_micros()),
        }
    }
}

/// The short code a failed submission is counted under: the problem's
/// `code`, `unreachable` without an answer, `bad_response` for an answer
/// this client cannot read.
pub fn failure_code(error: &ApiError) -> String {
    match error {
        ApiError::Problem { problem, .. } => problem.code.clone(),
        ApiError::Unreachable { .. } => "unreachable".into(),
        ApiError::BadResponse(_) => "bad_response".into(),
    }
}

/// Failures counted by code, in code order.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Codes(pub BTreeMap<String, u64>);

impl Codes {
    /// Counts one failure.
    pub fn add(&mut self, code: impl Into<String>) {
        *self.0.entry(code.into()).or_default() += 1;
    }

    /// Total failures.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `duplicate 1, unavailable 2`.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut l = Latencies::new();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert!((s.p50 - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99 - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max - 100.0).abs() < 0.1, "{s:?}");
        assert_eq!(Latencies::new().summary().max, 0.0);
    }
}
