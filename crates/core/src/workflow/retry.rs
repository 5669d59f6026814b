//! The retry policy of a task: how many attempts, which failure kinds are retried, and how long to
//! wait in between. Pure: the caller supplies the random number for jitter.

pub use super::raw::{Backoff, Jitter};
use crate::contract::FailureKind;
use std::time::Duration;

/// A validated retry policy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Fixed or exponential growth of the delay.
    pub backoff: Backoff,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Growth factor of exponential backoff (at least 1).
    pub multiplier: f64,
    /// Upper bound of any delay.
    pub max_delay: Duration,
    /// Randomisation of the delay.
    pub jitter: Jitter,
    /// Failure kinds that are retried.
    pub on: Vec<FailureKind>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::Exponential,
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(60),
            jitter: Jitter::Full,
            on: vec![
                FailureKind::Transient,
                FailureKind::Trap,
                FailureKind::Timeout,
            ],
        }
    }
}

impl RetryPolicy {
    /// Whether an attempt numbered `attempt` (from 1) that failed with `kind` gets another one.
    pub fn should_retry(&self, kind: FailureKind, attempt: u32) -> bool {
        attempt < self.max_attempts && self.on.contains(&kind)
    }

    /// The delay before attempt `attempt + 1`, after attempt `attempt` (from 1) failed.
    /// `unit` is a random number in `[0, 1)`, used only with full jitter.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.initial_delay.as_secs_f64();
        let raw = match self.backoff {
            Backoff::Fixed => base,
            Backoff::Exponential => {
                let exponent = attempt.saturating_sub(1).min(1000) as i32;
                base * self.multiplier.powi(exponent)
            }
        };
        let capped = raw.min(self.max_delay.as_secs_f64());
        let secs = match self.jitter {
            Jitter::None => capped,
            Jitter::Full => capped * unit.clamp(0.0, 1.0),
        };
        Duration::from_secs_f64(if secs.is_finite() { secs.max(0.0) } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff, jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            backoff,
            jitter,
            initial_delay: Duration::from_millis(100),
            multiplier: 3.0,
            max_delay: Duration::from_millis(500),
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn exponential_grows_and_is_capped() {
        let p = policy(Backoff::Exponential, Jitter::None);
        assert_eq!(p.delay(1, 0.5), Duration::from_millis(100));
        assert_eq!(p.delay(2, 0.5), Duration::from_millis(300));
        assert_eq!(p.delay(3, 0.5), Duration::from_millis(500));
        assert_eq!(p.delay(200, 0.5), Duration::from_millis(500));
    }

    #[test]
    fn fixed_and_full_jitter() {
        let p = policy(Backoff::Fixed, Jitter::None);
        assert_eq!(p.delay(4, 0.9), Duration::from_millis(100));
        let p = policy(Backoff::Exponential, Jitter::Full);
        assert_eq!(p.delay(2, 0.5), Duration::from_millis(150));
        assert_eq!(p.delay(2, 0.0), Duration::ZERO);
    }

    #[test]
    fn retries_only_listed_kinds_within_budget() {
        let p = policy(Backoff::Fixed, Jitter::None);
        assert!(p.should_retry(FailureKind::Transient, 1));
        assert!(p.should_retry(FailureKind::Trap, 4));
        assert!(!p.should_retry(FailureKind::Trap, 5));
        assert!(!p.should_retry(FailureKind::Exit, 1));
        assert!(!p.should_retry(FailureKind::Fuel, 1));
    }
}
