//! Backoff with jitter: per object for reconciles (kube-rs requeues at a fixed delay, which hammers
//! the API server when one object keeps failing), and for watches that lost the API server.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;

use crate::api::RegionalDataCenter;

const BASE: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(300);

/// Consecutive failures per RegionalDataCenter.
#[derive(Default)]
pub struct Backoffs(Mutex<HashMap<ObjectRef<RegionalDataCenter>, u32>>);

impl Backoffs {
    /// Records a failure and returns how long to wait before the next attempt.
    pub fn failed(&self, object: ObjectRef<RegionalDataCenter>) -> Duration {
        let mut failures = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(object).or_insert(0);
        *count = count.saturating_add(1);
        jittered(delay(*count), random_fraction())
    }

    /// Forgets the failures of an object that reconciled, or that is gone.
    pub fn forget(&self, object: &ObjectRef<RegionalDataCenter>) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(object);
    }

    /// Forgets every object for which `exists` says no, so deleted objects leave no entry.
    pub fn retain(&self, exists: impl Fn(&ObjectRef<RegionalDataCenter>) -> bool) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|object, _| exists(object));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or_default()
    }
}

/// 1 s after the first failure, doubling up to 5 minutes (before jitter).
pub fn delay(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    BASE.saturating_mul(1 << exponent).min(MAX)
}

/// `delay` spread over [75 %, 125 %) by `fraction` in [0, 1), so objects that failed together
/// (an API server outage) do not all retry in the same instant.
pub fn jittered(delay: Duration, fraction: f64) -> Duration {
    delay.mul_f64(0.75 + 0.5 * fraction.clamp(0.0, 1.0))
}

/// `period` jittered by a quarter either way, so that data centres created together (a converge,
/// a restart) are not audited again all in the same instant.
pub fn spread(period: Duration) -> Duration {
    jittered(period, random_fraction())
}

/// A number in [0, 1) that differs from call to call; jitter needs no stronger randomness.
fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Watch retries after an error: 0.5 s doubling to 4 s, jittered. Short, because while a watch
/// is down the operator is blind; one retry every few seconds costs the API server nothing.
#[derive(Default)]
pub struct WatchBackoff {
    failures: u32,
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = Duration::from_millis(500).saturating_mul(1 << self.failures.min(3));
        self.failures = self.failures.saturating_add(1);
        Some(jittered(base, random_fraction()))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_one_second_to_five_minutes() {
        let delays: Vec<u64> = (1..=11).map(|n| delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(delay(u32::MAX), MAX);
    }

    #[test]
    fn jitter_spreads_a_quarter_either_way() {
        let ten = Duration::from_secs(10);
        assert_eq!(jittered(ten, 0.0), Duration::from_millis(7500));
        assert_eq!(jittered(ten, 0.5), ten);
        assert!(jittered(ten, 0.999_999) < Duration::from_millis(12_500));
        let spread: std::collections::BTreeSet<_> =
            (0..20).map(|_| jittered(ten, random_fraction())).collect();
        assert!(spread.len() > 1, "retries that failed together are spread");
    }

    #[test]
    fn each_object_backs_off_on_its_own_and_success_resets_it() {
        let backoffs = Backoffs::default();
        let a = ObjectRef::new("a").within("ns");
        let b = ObjectRef::new("b").within("ns");
        let within = |d: Duration, secs: f64| {
            d >= Duration::from_secs_f64(secs * 0.75) && d < Duration::from_secs_f64(secs * 1.25)
        };
        assert!(within(backoffs.failed(a.clone()), 1.0));
        assert!(within(backoffs.failed(a.clone()), 2.0));
        assert!(within(backoffs.failed(b.clone()), 1.0));
        backoffs.forget(&a);
        assert!(within(backoffs.failed(a.clone()), 1.0));
        backoffs.retain(|object| object == &a);
        assert_eq!(
            backoffs.len(),
            1,
            "the entry of a deleted object is dropped"
        );
    }

    /// The longest wait between two attempts of a failing watch, jitter included; shorter than
    /// the time /readyz waits for a failing watch to go quiet before it trusts it again.
    const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(5);

    #[test]
    fn watch_retries_stay_within_a_few_seconds() {
        assert!(WATCH_BACKOFF_MAX < crate::telemetry::WATCH_RECOVERY);
        let mut backoff = WatchBackoff::default();
        let delays: Vec<Duration> = (&mut backoff).take(10).collect();
        assert!(delays[0] < Duration::from_millis(700));
        assert!(delays.iter().all(|d| *d < WATCH_BACKOFF_MAX));
        kube::runtime::utils::Backoff::reset(&mut backoff);
        assert!(
            backoff
                .next()
                .is_some_and(|d| d < Duration::from_millis(700))
        );
    }
}
