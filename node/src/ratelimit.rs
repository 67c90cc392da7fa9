//! Rate limits on `POST /v1/messages` (off unless configured): per client
//! address, checked before the body is read, and per sender, checked once
//! the signature has proven who sent the message. Both are token buckets
//! (the `governor` crate's GCRA): N messages a second, bursts of up to N.
//! A refusal is `429 rate_limited` with `Retry-After`.
//!
//! Keyed state is one small cell per address or sender seen recently; a
//! task calls [`RateLimits::forget_idle`] every minute, which drops the
//! cells of keys whose bucket has refilled, so memory stays bounded by the
//! keys active within a minute.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The limits of one node.
#[derive(Debug, Default)]
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_sender: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
}

/// How long to wait before the next message would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Whole seconds, at least 1 (the `Retry-After` value).
    pub retry_after_secs: u64,
}

fn quota(per_second: u32) -> Option<Quota> {
    NonZeroU32::new(per_second).map(Quota::per_second)
}

fn limited(not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Limited {
    let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
    Limited {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

impl RateLimits {
    /// Limits of `per_ip` and `per_sender` messages a second (0: none).
    pub fn new(per_ip: u32, per_sender: u32) -> Self {
        Self {
            per_ip: quota(per_ip).map(RateLimiter::keyed),
            per_sender: quota(per_sender).map(RateLimiter::keyed),
        }
    }

    /// Whether any limit is on.
    pub fn enabled(&self) -> bool {
        self.per_ip.is_some() || self.per_sender.is_some()
    }

    /// Takes one message of `ip`'s allowance.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Limited> {
        match &self.per_ip {
            Some(limiter) => limiter.check_key(&ip).map_err(|e| limited(&e)),
            None => Ok(()),
        }
    }

    /// Takes one message of `sender`'s allowance.
    pub fn check_sender(&self, sender: &[u8; 32]) -> Result<(), Limited> {
        match &self.per_sender {
            Some(limiter) => limiter.check_key(sender).map_err(|e| limited(&e)),
            None => Ok(()),
        }
    }

    /// Drops the state of keys whose allowance has refilled.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_sender {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Keys currently tracked (addresses, senders).
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.per_ip.as_ref().map_or(0, |l| l.len()),
            self.per_sender.as_ref().map_or(0, |l| l.len()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_wait_and_keys_are_separate() {
        let limits = RateLimits::new(3, 2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..3 {
            assert_eq!(limits.check_ip(ip), Ok(()));
        }
        assert_eq!(limits.check_ip(ip), Err(Limited { retry_after_secs: 1 }));
        assert_eq!(limits.check_ip(IpAddr::from([10, 0, 0, 1])), Ok(()), "another address");
        assert_eq!(limits.check_sender(&[1; 32]), Ok(()));
        assert_eq!(limits.check_sender(&[1; 32]), Ok(()));
        assert!(limits.check_sender(&[1; 32]).is_err());
        assert_eq!(limits.check_sender(&[2; 32]), Ok(()), "another sender");
        assert_eq!(limits.tracked(), (2, 2));
    }

    #[test]
    fn zero_means_no_limit() {
        let limits = RateLimits::new(0, 0);
        assert!(!limits.enabled());
        for _ in 0..10_000 {
            assert_eq!(limits.check_ip(IpAddr::from([127, 0, 0, 1])), Ok(()));
            assert_eq!(limits.check_sender(&[1; 32]), Ok(()));
        }
        assert_eq!(limits.tracked(), (0, 0));
    }
}
