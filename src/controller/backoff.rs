//! Per-object exponential backoff for transient errors: kube-rs requeues at a fixed delay, which
//! hammers the API server when one object keeps failing and starves none of the others.

use std::collections::HashMap;
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
        delay(*count)
    }

    /// Forgets the failures of an object that reconciled.
    pub fn succeeded(&self, object: &ObjectRef<RegionalDataCenter>) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(object);
    }
}

/// 1 s after the first failure, doubling up to 5 minutes.
pub fn delay(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    BASE.saturating_mul(1 << exponent).min(MAX)
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
    fn each_object_backs_off_on_its_own_and_success_resets_it() {
        let backoffs = Backoffs::default();
        let a = ObjectRef::new("a").within("ns");
        let b = ObjectRef::new("b").within("ns");
        assert_eq!(backoffs.failed(a.clone()), Duration::from_secs(1));
        assert_eq!(backoffs.failed(a.clone()), Duration::from_secs(2));
        assert_eq!(backoffs.failed(b), Duration::from_secs(1));
        backoffs.succeeded(&a);
        assert_eq!(backoffs.failed(a), Duration::from_secs(1));
    }
}
